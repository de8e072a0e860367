// The explorer's filters: folded on a narrow screen when there are results, so the first pair
// is on the first screen or two. Loaded right after the form (not deferred) so the page is not
// painted open first. Without this file the filters stay open and everything still works.
(function () {
  "use strict";
  var panel = document.getElementById("filter-panel");
  if (panel && panel.hasAttribute("data-collapse") && window.matchMedia("(max-width: 40rem)").matches) {
    panel.open = false;
  }
}());
