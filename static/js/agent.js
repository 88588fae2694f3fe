/* Agent pages: live offers and notices without a reload, offer countdowns, and a title
 * badge plus a short beep when a new offer arrives. No framework: every element with
 * data-live-url is fetched again every data-poll-ms and replaced by the fragment the server
 * renders (the same template the page was drawn with). */
(function () {
  "use strict";

  var baseTitle = document.title.replace(/^\(\d+\)\s*/, "");
  var clockOffset = 0; // server now - browser now, in ms (countdowns follow the server)
  var seenOffers = null; // offer ids already shown (null until the first look)
  var audio = null;

  function readClock(root) {
    var el = root.querySelector ? root.querySelector("[data-server-now]") : null;
    if (root.dataset && root.dataset.serverNow) el = root;
    if (!el) return;
    var server = Date.parse(el.dataset.serverNow);
    if (!isNaN(server)) clockOffset = server - Date.now();
  }

  function offerIds() {
    var ids = {};
    document.querySelectorAll("[data-offer-id]").forEach(function (row) {
      ids[row.dataset.offerId] = true;
    });
    return ids;
  }

  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = audio || new Ctx();
      if (audio.state === "suspended") audio.resume();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.4);
      document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    } catch (e) {
      /* no sound available: the title badge still tells */
    }
  }

  // browsers start audio only after a gesture: unlock it on the first click or key
  function unlockAudio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx && !audio) audio = new Ctx();
    if (audio && audio.state === "suspended") audio.resume();
  }
  document.addEventListener("click", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  function badge() {
    var live = document.querySelector("[data-live-url][data-count]");
    var n = live ? Number(live.dataset.count || 0) : 0;
    document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
  }

  function checkNewOffers() {
    var ids = offerIds();
    if (seenOffers !== null) {
      var fresh = Object.keys(ids).filter(function (id) { return !seenOffers[id]; });
      if (fresh.length) {
        beep();
        fresh.forEach(function (id) {
          var row = document.querySelector('[data-offer-id="' + id + '"]');
          if (row) row.classList.add("new-offer");
        });
      }
    }
    seenOffers = ids;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function tick() {
    var now = Date.now() + clockOffset;
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.expires) - now) / 1000);
      var row = el.closest("tr, section");
      if (left <= 0) {
        el.textContent = "expired";
        if (row) row.classList.add("expired");
        return;
      }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = "(" + (h ? h + ":" + pad(m) : m) + ":" + pad(s) + " left)";
      el.dataset.secondsLeft = String(left);
    });
  }

  function strip(html) {
    return html.replace(/name="csrfmiddlewaretoken" value="[^"]*"/g, "")
      .replace(/<span class="countdown"([^>]*)>[^<]*<\/span>/g, "<span$1></span>")
      .replace(/ data-seconds-left="\d+"/g, "")
      .replace(/ class="new-offer"| new-offer|expired/g, "");
  }

  function poll(el) {
    var url = el.dataset.liveUrl;
    var ms = Math.max(Number(el.dataset.pollMs) || 5000, 500);
    var id = el.id;
    function again() { setTimeout(function () { poll(document.getElementById(id) || el); }, ms); }
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        // signed out (a redirect to the login page) or an error: keep what is shown
        if (!response.ok || response.redirected) return null;
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.firstElementChild;
        var current = document.getElementById(id);
        if (!fresh || !current || fresh.id !== id) return;
        readClock(fresh);
        // the CSRF tokens differ on every render: compare the rest
        if (strip(fresh.innerHTML) !== strip(current.innerHTML)) current.replaceWith(fresh);
        else current.dataset.count = fresh.dataset.count;
        checkNewOffers();
        badge();
        tick();
        document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
      })
      .catch(function () { /* offline for a moment: try again later */ })
      .then(again);
  }

  readClock(document);
  checkNewOffers();
  badge();
  tick();
  setInterval(tick, 1000);
  document.querySelectorAll("[data-live-url]").forEach(function (el) {
    var ms = Math.max(Number(el.dataset.pollMs) || 5000, 500);
    setTimeout(function () { poll(el); }, ms);
  });
})();
