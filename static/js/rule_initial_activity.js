/* The rule form: the initial activity's choices follow the initial status (seed 003: "the
   list of initial activities will reflect the status selection"). The map comes from the
   activity select's data-activities-by-status; a choice that does not fit the new status is
   cleared, so the user picks one. The server checks the pair again (Rule.clean). */
(function () {
  "use strict";
  function follow(status, activity, map) {
    var allowed = map[status.value] || [];
    var current = activity.value;
    while (activity.options.length) activity.remove(0);
    activity.add(new Option("---------", ""));
    allowed.forEach(function (pair) {
      activity.add(new Option(pair[1], pair[0]));
    });
    var fits = allowed.some(function (pair) { return pair[0] === current; });
    activity.value = fits ? current : "";
  }
  function init() {
    var status = document.getElementById("id_initial_status");
    var activity = document.getElementById("id_initial_activity");
    if (!status || !activity || !activity.dataset.activitiesByStatus) return;
    var map = JSON.parse(activity.dataset.activitiesByStatus);
    status.addEventListener("change", function () { follow(status, activity, map); });
    follow(status, activity, map);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
