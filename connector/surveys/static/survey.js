// Progressive enhancement: show only the reasons that match the tone of the chosen score.
// Without JavaScript every group stays visible and any of them may be ticked.
(function () {
  "use strict";
  var form = document.querySelector("form.survey");
  if (!form) { return; }
  var groups = form.querySelectorAll("fieldset.reasons[data-tone]");
  function update() {
    var chosen = form.querySelector("input[name=score]:checked");
    var tone = chosen ? chosen.getAttribute("data-tone") : null;
    Array.prototype.forEach.call(groups, function (group) {
      var show = group.getAttribute("data-tone") === tone;
      group.hidden = !show;
      // Disabled boxes are not submitted: reasons of a hidden tone never reach the server.
      Array.prototype.forEach.call(group.querySelectorAll("input"), function (box) { box.disabled = !show; });
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "score") { update(); }
  });
  update();
}());
