// The commander form, a little quicker with JavaScript: choosing a template fills the message at once, its
// {components} and {next_update} from the form as it stands (without the script, the "Use template" button
// asks the server, which fills them the same way), and the message's length is counted as it is typed.
// The form works the same without this script.
(function () {
  "use strict";
  var starter = document.getElementById("starter");
  var message = document.getElementById("message");
  var count = document.getElementById("message-count");
  var nextUpdate = document.getElementById("next_update");
  var nextUpdateTime = document.getElementById("next_update_time");
  if (!starter || !message || !count || !nextUpdate || !nextUpdateTime) {
    return;
  }
  function showCount() {
    count.textContent = message.value.length + " of " + count.dataset.limit + " characters";
  }
  function affected() {
    // Named, and set to a state other than operational, or not operational before (as when resolving).
    var names = [];
    document.querySelectorAll("#components-fieldset .rows").forEach(function (row) {
      var name = row.querySelector("input[name=component_name]").value.trim();
      var state = row.querySelector("select[name=component_state]");
      var changed = state.value && state.value !== "operational";
      var was = state.dataset.current && state.dataset.current !== "operational";
      if (name && (changed || was)) {
        names.push(name);
      }
    });
    if (names.length === 0) {
      return "our services";
    }
    return names.length === 1 ? names[0] : names.slice(0, -1).join(", ") + " and " + names[names.length - 1];
  }
  function promised() {
    var chosen = nextUpdate.options[nextUpdate.selectedIndex];
    var due = null;
    if (chosen && chosen.dataset.minutes) {
      due = new Date(Date.now() + Number(chosen.dataset.minutes) * 60000);
    } else if (chosen && chosen.value && nextUpdateTime.value) {
      due = new Date(nextUpdateTime.value + "Z");  // the form's times are UTC
    }
    if (!due || isNaN(due.getTime())) {
      return "as soon as we know more";
    }
    return "by " + due.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }
  starter.addEventListener("change", function () {
    var chosen = starter.options[starter.selectedIndex];
    if (chosen && chosen.dataset.template) {
      message.value = chosen.dataset.template.replace(/\{\{|\}\}|\{components\}|\{next_update\}/g, function (found) {
        return { "{{": "{", "}}": "}", "{components}": affected(), "{next_update}": promised() }[found];
      });
      showCount();
    }
  });
  message.addEventListener("input", showCount);
})();
