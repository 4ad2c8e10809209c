// The live ledger: follows the update's server-sent events and changes each delivery's row in place, so the
// page never reloads. Everything from the server goes in as text (textContent), never as HTML. Without this
// script, the page reloads itself while a delivery is on its way.
(function () {
  "use strict";
  var table = document.getElementById("deliveries");
  var live = document.getElementById("live-status");
  if (!table || !live || !window.EventSource) {
    return;
  }
  function allFinal() {
    return table.querySelector('tr[data-final="false"]') === null;
  }
  if (allFinal()) {
    return;
  }
  function field(row, name) {
    return row.querySelector('[data-field="' + name + '"]');
  }
  function record(log, attempt) {
    // One line per attempt: a line sent again (the journal's state after a reconnect) replaces its own.
    var line = log.querySelector('li[data-number="' + attempt.number + '"]') || document.createElement("li");
    line.dataset.number = String(attempt.number);
    line.textContent =
      "#" + attempt.number + " " + attempt.outcome + (attempt.error ? ": " + attempt.error : "") + " (" + attempt.at + ")";
    if (!line.parentNode) {
      log.appendChild(line);
    }
  }
  var source = new EventSource(table.dataset.events);
  source.addEventListener("delivery", function (message) {
    var change = JSON.parse(message.data);
    var row = document.getElementById("delivery-" + change.id);
    if (!row) {
      return;
    }
    row.dataset.final = change.final ? "true" : "false";
    var state = field(row, "state");
    state.textContent = change.state.replace("_", " ");
    state.className = "state state-" + change.state;
    field(row, "attempts").textContent = change.attempts + "/" + change.max_attempts;
    if (change.note !== null) {
      field(row, "note").textContent = change.note;
    }
    var log = field(row, "log");
    (change.log || []).forEach(function (attempt) { record(log, attempt); });
    if (change.attempt) {
      record(log, change.attempt);
    }
    if (allFinal()) {
      source.close();
      live.textContent = "Every delivery is final.";
    }
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      live.textContent = "Live updates stopped; reloading in a few seconds.";
      window.setTimeout(function () { window.location.reload(); }, 5000);
    }
  });
})();
