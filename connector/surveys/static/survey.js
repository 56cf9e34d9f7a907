// Progressive enhancement: show only the reasons that match the tone of the chosen score, and only the
// survey's own questions meant for the band of the chosen score (fieldset data-bands).
// Without JavaScript every group and question stays visible and any of them may be answered; the server
// keeps only the answers that fit the submitted score.
(function () {
  "use strict";
  var form = document.querySelector("form.survey");
  if (!form) { return; }
  var groups = form.querySelectorAll("fieldset.reasons[data-tone]");
  var questions = form.querySelectorAll("fieldset.question[data-bands]");
  function toggle(fieldset, show) {
    fieldset.hidden = !show;
    // Disabled controls are neither submitted nor validated: a hidden group never reaches the server.
    Array.prototype.forEach.call(fieldset.querySelectorAll("input"), function (input) {
      input.disabled = !show;
      if (fieldset.hasAttribute("data-required") && input.type !== "checkbox") { input.required = show; }
    });
  }
  function update() {
    var chosen = form.querySelector("input[name=score]:checked");
    var tone = chosen ? chosen.getAttribute("data-tone") : null;
    var band = chosen ? chosen.getAttribute("data-band") : null;
    Array.prototype.forEach.call(groups, function (group) {
      toggle(group, group.getAttribute("data-tone") === tone);
    });
    Array.prototype.forEach.call(questions, function (question) {
      toggle(question, band !== null && question.getAttribute("data-bands").split(" ").indexOf(band) !== -1);
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "score") { update(); }
  });
  update();
}());
