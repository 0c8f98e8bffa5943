// Dev console: a phone that talks to the bot through the real webhook path.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const thread = $("thread");
  const state = { mobile: "", channel: "whatsapp", lastIn: 0, lastOut: 0, shownSids: new Set(),
                  pending: new Map(), generation: 0 };
  const FINAL = new Set(["delivered", "read", "failed", "undelivered", "canceled"]);

  function channel() { return document.querySelector("input[name=channel]:checked").value; }

  function bubble(kind, text, opts) {
    opts = opts || {};
    const li = document.createElement("li");
    li.className = "msg " + kind;
    if (opts.testid) li.dataset.testid = opts.testid;
    const span = document.createElement("span");
    span.className = "text";
    // Never innerHTML: messages may contain markup. Links become <a> built from text nodes,
    // so a pay link or a receipt can be opened from the console.
    const parts = (text || "").split(/(https?:\/\/[^\s]+)/);
    parts.forEach(function (part, i) {
      if (i % 2 === 1 && kind === "out") {
        const a = document.createElement("a");
        a.href = part; a.textContent = part; a.target = "_blank"; a.rel = "noopener noreferrer";
        span.appendChild(a);
      } else {
        span.appendChild(document.createTextNode(part));
      }
    });
    li.appendChild(span);
    if (opts.image && /\.pdf(\?|$)/.test(opts.image)) {
      const a = document.createElement("a");
      a.href = opts.image; a.textContent = "📄 PDF"; a.target = "_blank"; a.rel = "noopener";
      a.className = "document";
      li.appendChild(a);
    } else if (opts.image) {
      const img = document.createElement("img");
      img.src = opts.image; img.alt = "image from Bijli Sahayak";
      li.appendChild(img);
    }
    if (opts.meta !== undefined) {
      const meta = document.createElement("span");
      meta.className = "meta"; meta.textContent = opts.meta;
      li.appendChild(meta);
    }
    thread.appendChild(li);
    thread.scrollTop = thread.scrollHeight;
    return li;
  }

  function render(items, history) {
    for (const item of items) {
      if (item.direction === "in") {
        state.lastIn = Math.max(state.lastIn, item.id);
        // Messages typed here are shown when sent; only a reload draws the earlier ones.
        if (!history || state.shownSids.has(item.sid)) continue;
        state.shownSids.add(item.sid);
        bubble("in", item.body || (item.media ? "📷 photo" : ""), { meta: "" });
      } else {
        state.lastOut = Math.max(state.lastOut, item.id);
        const li = bubble("out", item.body, { image: item.media_url, meta: item.status,
                                              testid: "reply" });
        li.dataset.outId = item.id;
        if (item.buttons && item.buttons.length) addButtons(li, item.buttons);
        if (!FINAL.has(item.status)) state.pending.set(String(item.id), li);
      }
    }
  }

  // A quick-reply template's buttons under its message; a tap posts what Twilio posts for one.
  function addButtons(li, buttons) {
    const row = document.createElement("div");
    row.className = "buttons";
    for (const b of buttons) {
      const btn = document.createElement("button");
      btn.type = "button"; btn.className = "quick-reply"; btn.textContent = b.title;
      btn.dataset.payload = b.id;
      btn.addEventListener("click", () => post({ button: { title: b.title, payload: b.id } },
                                               b.title));
      row.appendChild(btn);
    }
    li.insertBefore(row, li.querySelector(".meta"));
  }

  async function post(extra, shownText) {
    $("error").textContent = "";
    const res = await fetch("/console/send", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ mobile: state.mobile, channel: state.channel }, extra)),
    });
    const data = await res.json();
    if (!res.ok) { $("error").textContent = data.error || ("error " + res.status); return false; }
    state.shownSids.add(data.message_sid);
    bubble("in", shownText, { meta: data.status === 200 ? "✓" : "webhook " + data.status,
                              testid: "sent" });
    for (const text of data.immediate || []) bubble("out", text, { meta: "TwiML reply", testid: "reply" });
    if (data.status !== 200) $("error").textContent = "The webhook answered " + data.status + "; Twilio would retry.";
    poll();
    return true;
  }

  async function poll(history) {
    const gen = state.generation;
    if (!state.mobile) return;
    const q = new URLSearchParams({ mobile: state.mobile, channel: state.channel,
                                    after_in: state.lastIn, after_out: state.lastOut });
    try {
      const res = await fetch("/console/messages?" + q);
      if (res.ok && gen === state.generation) render((await res.json()).items, history === true);
      if (state.pending.size) {
        const ids = Array.from(state.pending.keys()).join(",");
        const st = await (await fetch("/console/statuses?ids=" + ids)).json();
        for (const [id, value] of Object.entries(st.statuses)) {
          const li = state.pending.get(id);
          if (!li) continue;
          li.querySelector(".meta").textContent = value;
          if (FINAL.has(value)) state.pending.delete(id);
        }
      }
    } catch (err) { $("error").textContent = "polling failed: " + err; }
  }

  function switchThread() {
    state.mobile = $("mobile").value.trim();
    state.channel = channel();
    state.generation += 1;
    state.lastIn = 0; state.lastOut = 0; state.shownSids.clear(); state.pending.clear();
    thread.textContent = "";
    $("thread-title").textContent = (state.channel === "whatsapp" ? "WhatsApp" : "SMS") + " · " + state.mobile;
    poll(true);
  }

  $("preset").addEventListener("change", (ev) => {
    const opt = ev.target.selectedOptions[0];
    if (opt.value) {
      $("mobile").value = opt.value;
      const role = document.querySelector(`input[name=role][value=${opt.dataset.role}]`);
      if (role) role.checked = true;
    }
    switchThread();
  });
  $("mobile").addEventListener("change", switchThread);
  for (const r of document.querySelectorAll("input[name=channel]")) r.addEventListener("change", switchThread);
  for (const r of document.querySelectorAll("input[name=role]")) r.addEventListener("change", () => {
    const want = document.querySelector("input[name=role]:checked").value;
    const opt = Array.from($("preset").options).find((o) => o.dataset.role === want);
    if (opt) { $("preset").value = opt.value; $("mobile").value = opt.value; switchThread(); }
  });

  $("compose").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("error").textContent = "";
    if ($("mobile").value.trim() !== state.mobile || channel() !== state.channel) switchThread();
    const body = $("body").value;
    const media = $("media").checked;
    const location = $("location").value.trim();
    const shown = [body, location ? "📍 " + location : "", media ? "📷 photo" : ""].filter(Boolean);
    if (!await post({ body: body, media: media, location: location }, shown.join(" "))) return;
    $("body").value = ""; $("media").checked = false; $("location").value = "";
  });

  switchThread();
  setInterval(poll, 800);
})();
