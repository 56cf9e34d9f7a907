"""Jira Cloud / Data Center simulator, with the JSM request APIs, served over real HTTP.

`JiraSimulator` turns a synthetic `World` into Jira issues and answers the REST calls the connector
and the `jira` package make, behaving like the documented product (see shared/reference/jira-api.md):

- Cloud: enhanced search `GET|POST /rest/api/{2,3}/search/jql` (opaque `nextPageToken`, no
  `total`, bounded JQL only); the legacy `/search` answers 410 Gone.
- Data Center: `GET|POST /rest/api/2/search` with `startAt`/`maxResults`/`total`; no v3, no
  `/search/jql`.
- Issues, edits (`notifyUsers=false` needs admin rights), create and bulk create, links, platform
  comments (public unless the `sd.public.comment` property says internal), issue properties, and the
  JSM request comment and (experimental) feedback resources.
- Sub-tasks: a "Sub-task" issue type (`subtask: true`), per-project issue type schemes (`createmeta`
  lists them; `JiraSimulator.set_issue_types` takes the sub-task type away, as some service projects
  are set up), `fields.parent` on create with Jira's refusals, `parent`/`subtasks` on read, and JQL
  `parent = KEY`.
- Fields: `/field`, `editmeta` (only fields on the edit screen), and creating a custom field
  (`POST /field`, admin only, created on no screen: `add_to_screen` is the admin's next step).

Timestamps are rendered in the API user's profile time zone and JQL string dates are read in it,
the pitfall the connector must avoid by searching with epoch milliseconds. Custom field ids differ
between the two modes, so the connector has to discover them through `/field`.

Modules: `simulator` (the site's state and Python API), `app` (WSGI entry, auth, routing, serving),
`search` (JQL, both searches, page tokens, the search cache), `issues` (issue, link, comment and
property resources), `fields` (field catalogue, editmeta, edit validation), `jsm` (servicedeskapi),
`encode` (issue JSON per field), `render` (timestamps, ADF, embedded resources), `web` (errors and
request parsing) and `model` (records and catalogues).
"""

from connector.sandbox.jira.app import jira_error_body, make_jira_server
from connector.sandbox.jira.model import CUSTOM_FIELD_IDS, Notification
from connector.sandbox.jira.simulator import JiraSimulator

# Error wording the contract tests assert on; importable from here as before the split.
from connector.sandbox.jira.web import LEGACY_SEARCH_GONE as LEGACY_SEARCH_GONE
from connector.sandbox.jira.web import NOT_AUTHENTICATED as NOT_AUTHENTICATED
from connector.sandbox.jira.web import UNBOUNDED_JQL as UNBOUNDED_JQL

__all__ = [
    "CUSTOM_FIELD_IDS",
    "JiraSimulator",
    "Notification",
    "jira_error_body",
    "make_jira_server",
]
