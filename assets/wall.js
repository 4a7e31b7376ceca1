// Wall screen (pages/overview.py): everything that must keep working when the server does not.
// Ages are measured with the browser's own clock, so a skewed server clock cannot hide a
// stalled feed, and the labels tick without any request.
(function () {
  var ns = (window.dash_clientside = window.dash_clientside || {});

  function clockText(ms, tz) {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: tz || "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit",
      hour12: false,
    }).format(new Date(ms));
  }

  function ageText(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) { return s + " s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + " min"; }
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  // The top bar's clock shows the time in the NOC's zone; the wall adds the day beside it.
  function dateText(ms, tz) {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: tz || "UTC", weekday: "short", day: "numeric", month: "short", year: "numeric",
    }).format(new Date(ms));
  }

  ns.wall = {
    // Stamp each server answer with the browser time it arrived: good data or a failure.
    seen: function (status, previous) {
      if (!status) { return window.dash_clientside.no_update; }
      var prev = previous || {};
      var now = Date.now();
      if (status.ok) { return { ok_ms: now, fail_ms: null, error: null }; }
      return { ok_ms: prev.ok_ms || null, fail_ms: prev.fail_ms || now, error: status.error };
    },

    // Once a second: how old the shown data is, and whether the backend stopped answering.
    tick: function (_n, seen, config) {
      var cfg = config || {};
      var interval = cfg.interval_ms || 15000;
      var tz = cfg.tz || "UTC";
      var info = seen || {};
      var now = Date.now();
      var day = dateText(now, tz);
      // Two missed refreshes (and at least 20 s) before crying wolf over one slow answer.
      var staleAfter = Math.max(2.5 * interval, interval + 20000);
      if (!info.ok_ms) {
        var waited = performance.now();
        if (waited < staleAfter && !info.fail_ms) {
          return ["Waiting for the first data…", "wall-updated", "wall-body", day];
        }
        var since = info.fail_ms || now - waited;
        return ["No data: backend not answering since " + clockText(since, tz),
                "wall-updated wall-updated-stale", "wall-body", day];
      }
      var age = now - info.ok_ms;
      if (info.fail_ms || age > staleAfter) {
        var from = info.fail_ms || info.ok_ms + interval;
        var why = info.error ? " (" + info.error + ")" : "";
        return ["Stale data: backend not answering since " + clockText(from, tz) + why +
                " · showing data from " + ageText(age) + " ago",
                "wall-updated wall-updated-stale", "wall-body wall-body-stale", day];
      }
      return ["Updated " + ageText(age) + " ago · every " + Math.round(interval / 1000) + " s",
              "wall-updated", "wall-body", day];
    },
  };
})();
