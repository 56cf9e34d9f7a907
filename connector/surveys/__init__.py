"""Surveys: who is asked (policy), how links are signed (tokens); delivery and the page come next."""
