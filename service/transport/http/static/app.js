// posesvc demo page: POST /v1/pose with a photo or webcam frames, draw boxes and skeletons on a canvas.
"use strict";
// Limbs come from the served model's keypoint schema (/v1/models); COCO's until that answer arrives.
let SKELETON = [[15,13],[13,11],[16,14],[14,12],[11,12],[5,11],[6,12],[5,6],[5,7],[6,8],[7,9],[8,10],[1,2],[0,1],[0,2],[1,3],[2,4],[3,5],[4,6]];
const KPT_THRESHOLD = 0.2;
const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), ctx = canvas.getContext("2d"), statusEl = $("status");
let webcamTimer = null;
let MODELS = [];  // /v1/models: every served model, the default first

function setStatus(text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", isError);
}

function headers() {
  const key = $("apikey").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function loadModels() {
  try {
    const r = await fetch("v1/models", { headers: headers() });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const info = await r.json();
    MODELS = info.models;
    const sel = $("modelsel");
    sel.innerHTML = "";
    for (const m of MODELS) {
      const opt = document.createElement("option");
      opt.value = m.name; opt.textContent = m.name + (m.default ? " (default)" : "");
      sel.appendChild(opt);
    }
    showModel();
  } catch (e) {
    $("model").textContent = `model info unavailable (${e.message})`;
  }
}

function showModel() {
  const m = MODELS.find((x) => x.name === $("modelsel").value) || MODELS[0];
  if (!m) return;
  $("model").textContent = `${m.name} · input ${m.input_size.join("x")} · ${m.joints.length} joints (${m.keypoint_schema}) · ${m.convention} · published AP ${m.published_ap ?? "n/a"}`;
  SKELETON = m.skeleton;
  $("untrained").hidden = m.trained;
}

function scoreColour(s) {
  const v = Math.max(0, Math.min(1, s));
  return `rgb(${Math.round(255 * Math.min(1, 2 - 2 * v))},${Math.round(255 * Math.min(1, 2 * v))},0)`;
}

function draw(source, result) {
  const w = source.naturalWidth || source.videoWidth || source.width;
  const h = source.naturalHeight || source.videoHeight || source.height;
  canvas.width = w; canvas.height = h;
  ctx.drawImage(source, 0, 0, w, h);
  const lw = Math.max(2, Math.round(Math.min(w, h) / 250));
  let drawn = 0;
  const tbody = $("persons").querySelector("tbody");
  tbody.innerHTML = "";
  result.persons.forEach((p, i) => {
    const [x, y, bw, bh] = p.bbox;
    ctx.strokeStyle = "#0af"; ctx.lineWidth = lw;
    ctx.strokeRect(x, y, bw, bh);
    ctx.fillStyle = "#0af"; ctx.font = `${6 * lw}px sans-serif`;
    ctx.fillText(`${p.track_id !== undefined ? "#" + p.track_id + " " : ""}${p.score.toFixed(2)}`, x, Math.max(10, y - 4));
    const k = p.keypoints;
    const ok = k.map((q) => q.score > KPT_THRESHOLD && Number.isFinite(q.x) && Number.isFinite(q.y));
    ctx.strokeStyle = "#fff";
    for (const [a, b] of SKELETON) {
      if (ok[a] && ok[b]) { ctx.beginPath(); ctx.moveTo(k[a].x, k[a].y); ctx.lineTo(k[b].x, k[b].y); ctx.stroke(); }
    }
    k.forEach((q, j) => {
      if (!ok[j]) return;
      ctx.fillStyle = scoreColour(q.score);
      ctx.beginPath(); ctx.arc(q.x, q.y, lw + 2, 0, 2 * Math.PI); ctx.fill();
    });
    drawn += 1;
    const row = tbody.insertRow();
    row.innerHTML = `<td>${i + 1}</td><td>${p.score.toFixed(3)}</td><td>${p.bbox.map((v) => v.toFixed(0)).join(", ")}</td><td>${ok.filter(Boolean).length}/${k.length}</td>`;
  });
  canvas.dataset.drawnPersons = String(drawn);
  canvas.dataset.returnedPersons = String(result.persons.length);
  return drawn;
}

async function estimate(blob, source) {
  const form = new FormData();
  form.append("image", blob, "image");
  form.append("flip", $("flip").checked ? "true" : "false");
  form.append("min_score", $("minscore").value || "0");
  if ($("modelsel").value) form.append("model", $("modelsel").value);
  const boxes = $("boxes").value.trim();
  if (boxes) form.append("boxes", boxes);
  const t0 = performance.now();
  const r = await fetch("v1/pose", { method: "POST", body: form, headers: headers() });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || body.title || `HTTP ${r.status}`);
  const n = draw(source, body);
  const ms = (performance.now() - t0).toFixed(0);
  setStatus(`${n} person(s) drawn in ${ms} ms${body.model && !body.model.trained ? " (untrained weights)" : ""}.`);
  canvas.dataset.done = String(Number(canvas.dataset.done || 0) + 1);
  return body;
}

async function handleFile(file) {
  if (!file) return;
  setStatus(`Estimating ${file.name}…`);
  const img = new Image();
  img.src = URL.createObjectURL(file);
  try {
    await img.decode();
    await estimate(file, img);
  } catch (e) {
    setStatus(`Error: ${e.message}`, true);
    canvas.dataset.error = e.message;
  }
}

$("file").addEventListener("change", (e) => handleFile(e.target.files[0]));
$("modelsel").addEventListener("change", showModel);
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); handleFile(e.dataTransfer.files[0]); });

$("webcam").addEventListener("click", async () => {
  const video = $("video");
  if (webcamTimer) {
    clearTimeout(webcamTimer); webcamTimer = null;
    video.srcObject && video.srcObject.getTracks().forEach((t) => t.stop());
    $("webcam").textContent = "Start webcam";
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    await video.play();
    $("webcam").textContent = "Stop webcam";
    const grab = document.createElement("canvas");
    const loop = async () => {
      grab.width = video.videoWidth; grab.height = video.videoHeight;
      grab.getContext("2d").drawImage(video, 0, 0);
      const blob = await new Promise((res) => grab.toBlob(res, "image/jpeg", 0.85));
      try { await estimate(blob, grab); } catch (e) { setStatus(`Error: ${e.message}`, true); }
      if (webcamTimer !== null) webcamTimer = setTimeout(loop, 30);
    };
    webcamTimer = setTimeout(loop, 0);
  } catch (e) {
    setStatus(`Webcam unavailable: ${e.message}`, true);
  }
});

loadModels();
