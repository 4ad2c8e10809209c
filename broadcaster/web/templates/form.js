// The commander form, a little quicker with JavaScript: choosing a template fills the message at once
// (without it, the "Use template" button asks the server), and the message's length is counted as it is
// typed. The form works the same without this script.
(function () {
  "use strict";
  var starter = document.getElementById("starter");
  var message = document.getElementById("message");
  var count = document.getElementById("message-count");
  if (!starter || !message || !count) {
    return;
  }
  function showCount() {
    count.textContent = message.value.length + " of " + count.dataset.limit + " characters";
  }
  starter.addEventListener("change", function () {
    var chosen = starter.options[starter.selectedIndex];
    if (chosen && chosen.dataset.message) {
      message.value = chosen.dataset.message;
      showCount();
    }
  });
  message.addEventListener("input", showCount);
})();
