"""The service's web page (``GET /``): one self-contained HTML document, no external resources.

Upload a file, or record the microphone (MediaRecorder; the recording is decoded in the page
and sent as 16-bit WAV, which every libsndfile build reads). Probabilities are drawn as bars;
a long file's timeline as an inline SVG. Every value from the server is set with
``textContent`` or SVG attributes, never parsed as HTML. ``document.body.dataset.state`` says
``ready``, ``busy``, ``done`` or ``error`` (the browser test waits on it).
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>emofuse: speech emotion</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:880px;padding:18px;color:#222}
 h1{font-size:20px;margin:0 0 4px} #model{color:#555;font-size:13px;margin-bottom:14px}
 form{display:flex;flex-wrap:wrap;gap:10px;align-items:center;padding:12px;border:1px solid #ddd;border-radius:8px}
 textarea{width:100%;height:42px} button{font-size:15px;padding:6px 14px;cursor:pointer}
 #status{margin:10px 0;color:#555} #status.error{color:#b00020;font-weight:600}
 #label{font-size:26px;font-weight:700;margin:8px 0}
 .row{display:flex;align-items:center;gap:8px;margin:3px 0} .name{width:110px;text-align:right}
 .bar{flex:1;background:#eee;height:18px;border-radius:4px;overflow:hidden} .fill{height:100%}
 .val{width:54px;font-variant-numeric:tabular-nums} #plot svg{width:100%;height:auto;border:1px solid #ddd}
 .hint{color:#777;font-size:12px}
</style></head>
<body data-state="loading">
<h1>emofuse: speech emotion recognition</h1>
<div id="model">loading the model description...</div>
<form id="form">
 <input id="file" type="file" name="file" accept="audio/*,.wav,.flac,.ogg,.mp3,.aiff,.aif">
 <button id="send" type="submit">Predict</button>
 <button id="rec" type="button">&#9679; Record</button>
 <div id="tr-row" hidden style="width:100%"><textarea id="transcript" name="transcript"
   placeholder="transcript of the clip (this model reads text too)"></textarea></div>
 <div class="hint">Audio stays on this machine: the page talks only to this service.</div>
</form>
<div id="status"></div>
<div id="result" hidden>
 <div id="label"></div><div id="meta" class="hint"></div>
 <div id="bars"></div>
 <div id="plot"></div>
</div>
<script>
"use strict";
const $ = id => document.getElementById(id);
const COLORS = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
let info = null;
function state(s, text, isError) {
  document.body.dataset.state = s;
  $("status").textContent = text || "";
  $("status").className = isError ? "error" : "";
}
fetch("model").then(r => r.json()).then(m => {
  info = m;
  $("model").textContent = m.model + " \\u00b7 " + m.folds + " fold(s) \\u00b7 " + m.modalities.join(" + ") +
    " \\u00b7 classes: " + m.classes.join(", ") + " \\u00b7 files up to " + m.limits.max_seconds + " s";
  if (m.needs_transcript || m.transcribes) $("tr-row").hidden = false;
  if (m.transcribes) $("transcript").placeholder = "transcript (optional: the model transcribes the clip itself)";
  state("ready", "Choose an audio file or record one.");
}).catch(e => state("error", "cannot reach the service: " + e, true));

$("form").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = $("file").files[0];
  if (!f) { state("error", "choose an audio file first", true); return; }
  send(f, f.name);
});

async function send(blob, name) {
  const fd = new FormData();
  fd.append("file", blob, name);
  const t = $("transcript").value.trim();
  if (t) fd.append("transcript", t);
  $("result").hidden = true;
  state("busy", "predicting " + name + " ...");
  try {
    const r = await fetch("predict", {method: "POST", body: fd});
    let j;
    try { j = await r.json(); } catch (e) { j = {error: "HTTP " + r.status}; }
    if (!r.ok) { state("error", (j.error || j.detail || ("HTTP " + r.status)) + " (HTTP " + r.status + ")", true); return; }
    show(j);
  } catch (e) { state("error", "request failed: " + e, true); }
}

function show(j) {
  $("label").textContent = j.label;
  $("meta").textContent = j.file + " \\u00b7 " + j.seconds.toFixed(1) + " s \\u00b7 " + j.model + " (" + j.folds +
    " fold(s))" + (j.timeline ? " \\u00b7 " + j.timeline.segments.length + " speech segments" : "");
  const bars = $("bars");
  bars.replaceChildren();
  j.classes.forEach((c, k) => {
    const p = j.probs[c], row = document.createElement("div"), name = document.createElement("span"),
          bar = document.createElement("div"), fill = document.createElement("div"), val = document.createElement("span");
    row.className = "row"; row.dataset.cls = c; row.dataset.prob = p;
    name.className = "name"; name.textContent = c;
    bar.className = "bar"; fill.className = "fill";
    fill.style.width = (100 * p).toFixed(1) + "%"; fill.style.background = COLORS[k % COLORS.length];
    val.className = "val"; val.textContent = p.toFixed(3);
    bar.appendChild(fill); row.append(name, bar, val); bars.appendChild(row);
  });
  $("plot").replaceChildren();
  if (j.timeline) plot(j.timeline, j.classes);
  $("result").hidden = false;
  state("done", "done");
}

function plot(tl, classes) {
  const NS = "http://www.w3.org/2000/svg", W = 840, H = 230, L = 36, R = 10, T = 10, B = 46;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  const x = s => L + (W - L - R) * s / Math.max(tl.seconds, 1e-3), y = p => T + (H - T - B) * (1 - p);
  const el = (tag, attrs, parent) => { const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]); (parent || svg).appendChild(e); return e; };
  el("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fafafa", stroke: "#ccc"});
  [0, 0.5, 1].forEach(p => { el("text", {x: L - 4, y: y(p) + 4, "text-anchor": "end", "font-size": 10}).textContent = p; });
  classes.forEach((c, k) => {
    let d = "";
    tl.segments.forEach(s => { d += "M" + x(s.start).toFixed(1) + " " + y(s.probs[c]).toFixed(1) +
                                    "H" + x(s.end).toFixed(1); });
    el("path", {d: d, stroke: COLORS[k % COLORS.length], "stroke-width": 2, fill: "none"});
    el("text", {x: L + 8 + 90 * k, y: H - 4, "font-size": 11, fill: COLORS[k % COLORS.length]}).textContent = "\\u25a0 " + c;
  });
  tl.segments.forEach(s => {
    const r = el("rect", {x: x(s.start), y: H - B + 6, width: Math.max(1, x(s.end) - x(s.start)), height: 10,
                          fill: COLORS[classes.indexOf(s.label) % COLORS.length], class: "seg"});
    el("title", {}, r).textContent = s.start.toFixed(1) + "-" + s.end.toFixed(1) + " s: " + s.label;
  });
  const steps = Math.min(10, Math.max(1, Math.floor(tl.seconds / 10)));
  for (let i = 0; i <= steps; i++) {
    const s = tl.seconds * i / steps;
    el("text", {x: x(s), y: H - B + 28, "text-anchor": "middle", "font-size": 10}).textContent = s.toFixed(0) + " s";
  }
  $("plot").appendChild(svg);
}

// Microphone: MediaRecorder records in the browser's own format (WebM/Ogg Opus); the page decodes it
// and sends 16-bit WAV, which the service reads whatever its libsndfile build.
let recorder = null;
$("rec").addEventListener("click", async () => {
  if (recorder && recorder.state === "recording") { recorder.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    state("error", "this browser cannot record here (MediaRecorder needs http://127.0.0.1 or https); upload a file", true);
    return;
  }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({audio: true}); }
  catch (e) { state("error", "no microphone: " + e.message, true); return; }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = e => chunks.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach(t => t.stop());
    $("rec").textContent = "\\u25cf Record";
    try { send(await toWav(new Blob(chunks, {type: recorder.mimeType})), "recording.wav"); }
    catch (e) { state("error", "could not decode the recording: " + e.message, true); }
  };
  recorder.start();
  $("rec").textContent = "\\u25a0 Stop";
  state("busy", "recording... press Stop when done");
});

async function toWav(blob) {
  const ctx = new AudioContext();
  const buf = await ctx.decodeAudioData(await blob.arrayBuffer());
  ctx.close();
  const n = buf.length, mono = new Float32Array(n);
  for (let c = 0; c < buf.numberOfChannels; c++) {
    const ch = buf.getChannelData(c);
    for (let i = 0; i < n; i++) mono[i] += ch[i] / buf.numberOfChannels;
  }
  const v = new DataView(new ArrayBuffer(44 + 2 * n)), sr = buf.sampleRate;
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, sr, true);
  v.setUint32(28, 2 * sr, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data");
  v.setUint32(40, 2 * n, true);
  for (let i = 0; i < n; i++) v.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, mono[i])) * 32767, true);
  return new Blob([v], {type: "audio/wav"});
}
</script>
</body></html>
"""
