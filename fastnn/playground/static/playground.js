// fastnn playground: draws what the server's training thread sends, and sends what the user changes.
// The server owns the state (settings, points, network); this page mirrors it into the controls
// and the URL. Frames arrive as Server-Sent Events from /api/events.
"use strict";

const GRID = 100; // the heatmap: GRID x GRID values over [-6, 6]^2, row 0 at x2 = +6
const THUMB = 50; // a neuron's thumbnail: THUMB x THUMB values
const RADIUS = 6;
const ORANGE = [245, 147, 34];
const MID = [232, 234, 235];
const BLUE = [8, 119, 189];
const PALETTE = ["#f59322", "#0877bd", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const REG_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const DROPOUTS = [0, 0.1, 0.2, 0.3, 0.5];
const DATASETS = [
  ["circle", "Circle"], ["xor", "Exclusive or"], ["gauss", "Gaussian"], ["spiral", "Spiral"],
  ["blobs", "Blobs: 2-6 classes"], ["plane", "Plane (regression)"], ["multigauss", "Multi Gaussian (regression)"],
];
const FEATURES = [
  ["x1", "X<sub>1</sub>"], ["x2", "X<sub>2</sub>"], ["x1sq", "X<sub>1</sub><sup>2</sup>"],
  ["x2sq", "X<sub>2</sub><sup>2</sup>"], ["x1x2", "X<sub>1</sub>X<sub>2</sub>"],
  ["sinx1", "sin(X<sub>1</sub>)"], ["sinx2", "sin(X<sub>2</sub>)"],
];
// Settings kept in the URL, and how to read them back.
const NUMBER_KEYS = ["noise", "train_ratio", "num_samples", "classes", "seed", "dropout", "lr", "reg_rate",
  "batch_size", "max_epochs", "stop_loss"];
const TEXT_KEYS = ["dataset", "activation", "optimizer", "regularization", "backend"];
const LIST_KEYS = { layers: Number, features: String };

const state = {
  settings: null, frame: null, points: null, history: [], pending: 0, hover: null,
  showTest: false, discretize: false, hide: [], structure: "", frameTimes: [], lastEpoch: -1,
};
const $ = (id) => document.getElementById(id);

// ---- colours -------------------------------------------------------------------------------------

function mix(a, b, t) { return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t)); }
function hexRgb(hex) { return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)); }
// The original's scale: -1 orange, 0 light grey, +1 blue; one entry per quantized byte.
const LUT = Array.from({ length: 256 }, (_, q) => {
  const v = q / 127.5 - 1;
  return v < 0 ? mix(MID, ORANGE, -v) : mix(MID, BLUE, v);
});
function valueColor(v) {
  const c = LUT[Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)))];
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
function classColor(label, problem) { return problem === "regression" ? valueColor(label) : PALETTE[label]; }
function decode(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// Paint quantized values (and, for K > 2 classes, each pixel's class) into a canvas of size x size.
function paint(canvas, values, size, classes, K, discretize) {
  canvas.width = size; canvas.height = size;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(size, size);
  const rgb = PALETTE.map(hexRgb);
  for (let i = 0; i < size * size; i++) {
    let c;
    if (classes) {
      const p = values[i] / 255;
      const t = discretize ? 1 : Math.max(0, Math.min(1, (p - 1 / K) / (1 - 1 / K)));
      c = mix(MID, rgb[classes[i]], t);
    } else {
      let q = values[i];
      if (discretize) q = q >= 128 ? 255 : 0;
      c = LUT[q];
    }
    image.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
}

// ---- talking to the server -----------------------------------------------------------------------

function showMessage(text, where = "toast") {
  let box = $(where);
  if (!box) {
    box = document.createElement("div");
    box.id = "toast"; box.className = "tip"; box.style.cssText = "top:10px;right:10px;pointer-events:auto";
    document.body.appendChild(box);
  }
  box.textContent = text; box.hidden = !text;
  if (where === "toast" && text) setTimeout(() => { box.hidden = true; }, 6000);
}

async function api(method, path, body, raw = false) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.body = raw ? body : JSON.stringify(body);
    options.headers["Content-Type"] = raw ? "text/csv" : "application/json";
  }
  const response = await fetch(path, options);
  const answer = response.status === 204 ? {} : await response.json();
  if (!response.ok) throw new Error(answer.error || `${method} ${path}: ${response.status}`);
  return answer;
}

async function configure(changes) {
  state.pending++;
  try {
    const answer = await api("POST", "api/config", changes);
    applySettings(answer.settings);
  } catch (error) {
    showMessage(error.message);
    if (state.settings) applySettings(state.settings);
  } finally {
    state.pending--;
  }
}

async function control(action) {
  try { await api("POST", "api/control", { action }); } catch (error) { showMessage(error.message); }
}

// ---- the URL -------------------------------------------------------------------------------------

function readURL() {
  const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  const settings = {};
  for (const key of NUMBER_KEYS) if (params.has(key)) settings[key] = Number(params.get(key));
  for (const key of TEXT_KEYS) if (params.has(key)) settings[key] = params.get(key);
  for (const [key, parse] of Object.entries(LIST_KEYS)) {
    if (params.has(key)) settings[key] = params.get(key).split(",").filter((s) => s !== "").map(parse);
  }
  if (params.has("showTestData")) state.showTest = params.get("showTestData") === "true";
  if (params.has("discretize")) state.discretize = params.get("discretize") === "true";
  state.hide = params.has("hide") ? params.get("hide").split(",").filter(Boolean) : [];
  return settings;
}

function writeURL() {
  const s = state.settings;
  if (!s) return;
  const params = new URLSearchParams();
  for (const key of TEXT_KEYS.concat(NUMBER_KEYS)) params.set(key, s[key]);
  params.set("layers", s.layers.join(","));
  params.set("features", s.features.join(","));
  params.set("showTestData", state.showTest);
  params.set("discretize", state.discretize);
  if (state.hide.length) params.set("hide", state.hide.join(","));
  history.replaceState(null, "", "#" + params.toString());
}

function applyHide() {
  for (const element of document.querySelectorAll("[data-hide]")) {
    element.classList.toggle("hidden-by-url", state.hide.includes(element.dataset.hide));
  }
}

// ---- controls ------------------------------------------------------------------------------------

function fillSelect(id, values, format = String) {
  $(id).innerHTML = values.map((v) => `<option value="${v}">${format(v)}</option>`).join("");
}

function setSelect(id, value) {
  const select = $(id);
  if (![...select.options].some((o) => Number(o.value) === Number(value) || o.value === String(value))) {
    select.insertAdjacentHTML("beforeend", `<option value="${value}">${value}</option>`);
  }
  for (const o of select.options) if (o.value === String(value) || Number(o.value) === Number(value)) select.value = o.value;
}

function buildControls() {
  fillSelect("lr", LEARNING_RATES);
  fillSelect("reg_rate", REG_RATES);
  fillSelect("dropout", DROPOUTS);
  for (const id of ["lr", "reg_rate", "dropout"]) $(id).onchange = () => configure({ [id]: Number($(id).value) });
  for (const id of ["activation", "regularization", "optimizer"]) $(id).onchange = () => configure({ [id]: $(id).value });
  for (const id of ["train_ratio", "noise", "batch_size", "classes"]) {
    $(id).oninput = () => { $(id + "-value").textContent = $(id).value; };
    $(id).onchange = () => configure({ [id]: Number($(id).value) });
  }
  for (const id of ["max_epochs", "stop_loss"]) $(id).onchange = () => configure({ [id]: Number($(id).value || 0) });
  const box = $("datasets");
  for (const [name, title] of DATASETS) {
    const button = document.createElement("button");
    button.className = "dataset"; button.dataset.dataset = name; button.title = title;
    button.innerHTML = `<canvas width="40" height="40"></canvas>`;
    button.onclick = () => configure({ dataset: name });
    box.appendChild(button);
  }
  drawDatasetIcons();
  $("play").onclick = () => control($("play").classList.contains("playing") ? "pause" : "play");
  $("step").onclick = () => control("step");
  $("reset").onclick = () => { state.history = []; control("reset"); };
  $("regenerate").onclick = () => control("regenerate");
  $("add-layer").onclick = () => { if (state.settings.layers.length < 6) configure({ layers: [...state.settings.layers, 2] }); };
  $("remove-layer").onclick = () => { if (state.settings.layers.length) configure({ layers: state.settings.layers.slice(0, -1) }); };
  for (const button of document.querySelectorAll("#backend-switch button")) {
    button.onclick = () => configure({ backend: button.dataset.backend });
  }
  $("show-test").onchange = () => { state.showTest = $("show-test").checked; writeURL(); drawPoints(); };
  $("discretize").onchange = () => { state.discretize = $("discretize").checked; writeURL(); drawHeatmap(); };
  $("upload").onchange = async () => {
    const file = $("upload").files[0];
    if (!file) return;
    try {
      const answer = await api("POST", "api/upload", await file.text(), true);
      applySettings(answer.settings);
      showMessage(`${answer.points} points loaded`, "data-message");
    } catch (error) { showMessage(error.message, "data-message"); }
    $("upload").value = "";
  };
  $("points").onclick = addPointAt;
  $("click-class").onchange = () => $("points").classList.toggle("adding", $("click-class").value !== "");
}

// Small pictures of the generators' shapes for the dataset buttons (drawn, not fetched).
function drawDatasetIcons() {
  for (const button of document.querySelectorAll(".dataset")) {
    const ctx = button.querySelector("canvas").getContext("2d");
    const name = button.dataset.dataset;
    for (let px = 0; px < 40; px += 2) {
      for (let py = 0; py < 40; py += 2) {
        const x = (px / 40) * 12 - 6, y = 6 - (py / 40) * 12;
        let v = 0;
        if (name === "circle") v = Math.hypot(x, y) < 3 ? 1 : -1;
        else if (name === "xor") v = x * y >= 0 ? 1 : -1;
        else if (name === "gauss") v = x + y > 0 ? 1 : -1;
        else if (name === "spiral") v = Math.sin(Math.hypot(x, y) * 1.2 - Math.atan2(y, x)) > 0 ? 1 : -1;
        else if (name === "plane") v = (x + y) / 12;
        else if (name === "multigauss") v = Math.sin(x * 0.8) * Math.sin(y * 1.2);
        if (name === "blobs") {
          const k = Math.floor(((Math.atan2(y, x) - Math.PI / 4 + 4 * Math.PI) % (2 * Math.PI)) / (2 * Math.PI / 3));
          ctx.fillStyle = Math.hypot(x, y) < 1 ? valueColor(0) : PALETTE[k];
        } else {
          ctx.fillStyle = valueColor(v * 0.8);
        }
        ctx.fillRect(px, py, 2, 2);
      }
    }
  }
}

function applySettings(settings) {
  state.settings = settings;
  for (const id of ["lr", "reg_rate", "dropout"]) setSelect(id, settings[id]);
  for (const id of ["activation", "regularization", "optimizer"]) $(id).value = settings[id];
  for (const id of ["train_ratio", "noise", "batch_size", "classes"]) {
    $(id).value = settings[id]; $(id + "-value").textContent = settings[id];
  }
  $("max_epochs").value = settings.max_epochs || "";
  $("stop_loss").value = settings.stop_loss || "";
  for (const button of document.querySelectorAll(".dataset")) {
    button.classList.toggle("selected", button.dataset.dataset === settings.dataset);
  }
  $("classes-control").hidden = settings.dataset !== "blobs";
  $("num-layers").textContent = settings.layers.length;
  $("layers-word").textContent = settings.layers.length === 1 ? "hidden layer" : "hidden layers";
  for (const button of document.querySelectorAll("#backend-switch button")) {
    button.classList.toggle("active", button.dataset.backend === settings.backend);
  }
  $("footer-backend").textContent = settings.backend;
  $("show-test").checked = state.showTest;
  $("discretize").checked = state.discretize;
  writeURL();
}

// ---- the network ---------------------------------------------------------------------------------

const NODE = 40, ROW = 54, TOP = 52, FEATURE_X = 110;

function columnX(column, columns) {
  const width = Math.max($("network").clientWidth, 480);
  const gap = Math.min(130, (width - FEATURE_X - NODE - 10) / Math.max(columns - 1, 1));
  return FEATURE_X + column * gap;
}

// Rebuild the nodes when the shape of the network changes; frames then only repaint them.
function buildNetwork(frame) {
  const s = frame.settings;
  const outputs = frame.classes > 2 ? frame.classes : 1;
  const key = JSON.stringify([s.features, s.layers, outputs]);
  if (key === state.structure) return;
  state.structure = key;
  const network = $("network");
  for (const element of [...network.children]) if (element.id !== "links") element.remove();
  const columns = s.layers.length + 2;
  FEATURES.forEach(([name, label], j) => {
    const node = addNode(network, `input:${name}`, FEATURE_X, TOP + j * ROW, "input");
    node.classList.toggle("inactive", !s.features.includes(name));
    node.insertAdjacentHTML("beforeend", `<span class="label">${label}</span>`);
    node.onclick = () => toggleFeature(name);
  });
  s.layers.forEach((size, i) => {
    const x = columnX(i + 1, columns);
    const buttons = document.createElement("div");
    buttons.className = "layer-buttons"; buttons.dataset.hide = "layers";
    buttons.style.left = `${x - 7}px`; buttons.style.top = "0px";
    buttons.innerHTML = `<button class="round tiny" title="Add a neuron">+</button><button class="round tiny" title="Remove a neuron">&minus;</button>`;
    buttons.children[0].onclick = () => changeNeurons(i, +1);
    buttons.children[1].onclick = () => changeNeurons(i, -1);
    network.appendChild(buttons);
    const caption = document.createElement("div");
    caption.className = "layer-caption"; caption.style.left = `${x - 10}px`; caption.style.top = "28px";
    caption.textContent = size === 1 ? "1 neuron" : `${size} neurons`;
    network.appendChild(caption);
    for (let j = 0; j < size; j++) addNode(network, `hidden:${i}:${j}`, x, TOP + j * ROW, "hidden", [i, j]);
  });
  const outX = columnX(columns - 1, columns);
  const caption = document.createElement("div");
  caption.className = "layer-caption"; caption.style.left = `${outX - 10}px`; caption.style.top = "28px";
  caption.textContent = "output";
  network.appendChild(caption);
  addNode(network, "output", outX, TOP, "output", [s.layers.length, 0]);
  network.style.height = `${TOP + Math.max(7, ...s.layers) * ROW}px`;
  applyHide();
}

function addNode(network, key, x, y, kind, bias) {
  const node = document.createElement("div");
  node.className = `node ${kind}`; node.dataset.key = key;
  node.style.left = `${x}px`; node.style.top = `${y}px`;
  node.innerHTML = `<canvas width="${THUMB}" height="${THUMB}"></canvas>`;
  if (bias) {
    const square = document.createElement("div");
    square.className = "bias"; square.dataset.layer = bias[0]; square.dataset.to = bias[1];
    square.onmousemove = (event) => showTip(event, `Bias is ${currentBias(bias[0], bias[1])}. Click to change it.`);
    square.onmouseleave = hideTip;
    square.onclick = (event) => { event.stopPropagation(); editWeight(event, bias[0], null, bias[1]); };
    node.appendChild(square);
  }
  node.onmouseenter = () => { state.hover = key; drawHeatmap(); };
  node.onmouseleave = () => { state.hover = null; drawHeatmap(); };
  network.appendChild(node);
  return node;
}

function toggleFeature(name) {
  const features = state.settings.features.includes(name)
    ? state.settings.features.filter((f) => f !== name)
    : FEATURES.map(([f]) => f).filter((f) => f === name || state.settings.features.includes(f));
  if (features.length) configure({ features });
}

function changeNeurons(layer, delta) {
  const layers = [...state.settings.layers];
  layers[layer] = Math.max(1, Math.min(8, layers[layer] + delta));
  configure({ layers });
}

function nodePosition(key) {
  const node = document.querySelector(`.node[data-key="${key}"]`);
  return node ? [node.offsetLeft, node.offsetTop] : null;
}

// The links: one SVG path per weight, width and colour by the weight (the original's scales).
function drawLinks(frame) {
  const svg = $("links");
  const network = $("network");
  svg.setAttribute("width", network.clientWidth); svg.setAttribute("height", network.clientHeight);
  const s = frame.settings;
  const columns = [s.features.map((f) => `input:${f}`)];
  s.layers.forEach((size, i) => columns.push(Array.from({ length: size }, (_, j) => `hidden:${i}:${j}`)));
  columns.push(["output"]);
  const paths = [];
  frame.weights.forEach((layer, d) => {
    const targets = columns[d + 1];
    layer.W.forEach((row, i) => row.forEach((w, j) => {
      const a = nodePosition(columns[d][i]), b = nodePosition(targets[Math.min(j, targets.length - 1)]);
      if (!a || !b) return;
      const x1 = a[0] + NODE + 2, y1 = a[1] + NODE / 2, x2 = b[0], y2 = b[1] + NODE / 2, mx = (x1 + x2) / 2;
      const width = Math.min(10, 1 + (Math.abs(w) * 9) / 5);
      paths.push(`<path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}" stroke="${valueColor(Math.max(-1, Math.min(1, w)))}" `
        + `stroke-width="${width.toFixed(2)}" stroke-opacity="0.85" data-layer="${d}" data-from="${i}" data-to="${j}"></path>`);
    }));
  });
  svg.innerHTML = paths.join("");
  for (const path of svg.querySelectorAll("path")) {
    const [d, i, j] = ["layer", "from", "to"].map((k) => Number(path.dataset[k]));
    path.onmousemove = (event) => showTip(event, `Weight is ${state.frame.weights[d].W[i][j]}. Click to change it.`);
    path.onmouseleave = hideTip;
    path.onclick = (event) => editWeight(event, d, i, j);
  }
  for (const square of document.querySelectorAll(".bias")) {
    square.style.background = valueColor(Math.max(-1, Math.min(1, currentBias(+square.dataset.layer, +square.dataset.to))));
  }
}

function currentBias(layer, j) {
  const weights = state.frame && state.frame.weights[layer];
  return weights ? weights.b[Math.min(j, weights.b.length - 1)] : 0;
}

function showTip(event, text) {
  const tip = $("weight-tip");
  tip.textContent = text; tip.hidden = false;
  tip.style.left = `${event.clientX + 12}px`; tip.style.top = `${event.clientY + 12}px`;
}
function hideTip() { $("weight-tip").hidden = true; }

function editWeight(event, layer, from, to) {
  const box = $("weight-edit"), input = $("weight-input");
  box.hidden = false;
  box.style.left = `${event.clientX}px`; box.style.top = `${event.clientY}px`;
  input.value = from === null ? currentBias(layer, to) : state.frame.weights[layer].W[from][to];
  input.focus(); input.select();
  input.onkeydown = async (key) => {
    if (key.key === "Escape") box.hidden = true;
    if (key.key !== "Enter") return;
    box.hidden = true;
    try { await api("POST", "api/weight", { layer, from, to, value: Number(input.value) }); } catch (error) { showMessage(error.message); }
  };
}

// ---- pictures ------------------------------------------------------------------------------------

function drawHeatmap() {
  const frame = state.frame;
  if (!frame) return;
  const canvas = $("heatmap");
  const discretize = state.discretize;
  if (state.hover && state.hover !== "output" && frame.thumbs[state.hover]) {
    paint(canvas, decode(frame.thumbs[state.hover]), THUMB, null, 0, false);
  } else if (frame.heatmap_class) {
    paint(canvas, decode(frame.heatmap), GRID, decode(frame.heatmap_class), frame.classes, discretize);
  } else {
    paint(canvas, decode(frame.heatmap), GRID, null, 0, discretize && frame.problem !== "regression" ? true : discretize);
  }
}

function drawThumbnails(frame) {
  for (const node of document.querySelectorAll(".node")) {
    const data = frame.thumbs[node.dataset.key];
    const canvas = node.querySelector("canvas");
    if (node.dataset.key === "output" && frame.heatmap_class) {
      // K classes: every other pixel of the heatmap, coloured by class like the big one.
      const values = decode(frame.heatmap), classes = decode(frame.heatmap_class);
      const keep = (array) => Uint8Array.from({ length: THUMB * THUMB },
        (_, i) => array[2 * Math.floor(i / THUMB) * GRID + 2 * (i % THUMB)]);
      paint(canvas, keep(values), THUMB, keep(classes), frame.classes, state.discretize);
    } else if (data) paint(canvas, decode(data), THUMB, null, 0, false);
    else canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
}

function drawPoints() {
  const canvas = $("points"), ctx = canvas.getContext("2d"), data = state.points;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!data) return;
  const scale = canvas.width / (2 * RADIUS);
  const sets = [[data.train, "#fff"]];
  if (state.showTest) sets.push([data.test, "#000"]);
  for (const [set, stroke] of sets) {
    set.x.forEach(([x1, x2], i) => {
      ctx.beginPath();
      ctx.arc((x1 + RADIUS) * scale, (RADIUS - x2) * scale, 4, 0, 2 * Math.PI);
      ctx.fillStyle = classColor(set.y[i], data.problem);
      ctx.fill();
      ctx.lineWidth = 1; ctx.strokeStyle = stroke; ctx.stroke();
    });
  }
}

function drawLossChart() {
  const canvas = $("loss-chart"), ctx = canvas.getContext("2d");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = 300 * ratio; canvas.height = 60 * ratio;
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, 300, 60);
  const points = state.history;
  if (points.length < 2) return;
  const top = Math.max(...points.map((p) => Math.max(p[1] ?? 0, p[2] ?? 0)), 1e-6);
  const first = points[0][0], last = points[points.length - 1][0];
  for (const [index, colour] of [[1, "#999"], [2, "#000"]]) {
    ctx.beginPath();
    points.forEach((p, k) => {
      const x = ((p[0] - first) / Math.max(last - first, 1)) * 298 + 1, y = 59 - (Math.min(p[index] ?? 0, top) / top) * 57;
      if (k) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.stroke();
  }
}

// The colour key: the -1..1 scale, or one swatch per class when there are more than two.
function drawLegend(frame) {
  const many = !!frame.heatmap_class;
  $("legend-bar").style.background = many
    ? `linear-gradient(to right, ${Array.from({ length: frame.classes }, (_, c) => {
      const a = (100 * c) / frame.classes, b = (100 * (c + 1)) / frame.classes;
      return `${PALETTE[c]} ${a}%, ${PALETTE[c]} ${b}%`;
    }).join(", ")})`
    : `linear-gradient(to right, ${valueColor(-1)}, ${valueColor(0)}, ${valueColor(1)})`;
  const labels = many ? Array.from({ length: frame.classes }, (_, c) => `${c}`) : ["-1", "0", "1"];
  const text = labels.map((label) => `<span>${label}</span>`).join("");
  if ($("legend-text").innerHTML !== text) $("legend-text").innerHTML = text;
}

function drawConfusion(frame) {
  const box = $("confusion-box"), table = $("confusion");
  box.style.display = frame.confusion ? "" : "none";
  $("accuracy-row").style.display = frame.test_accuracy === undefined ? "none" : "";
  if (!frame.confusion) return;
  const k = frame.confusion.length;
  let html = "<tr><th></th>" + Array.from({ length: k }, (_, j) => `<th style="color:${PALETTE[j]}">${j}</th>`).join("") + "</tr>";
  frame.confusion.forEach((row, i) => {
    html += `<tr><th style="color:${PALETTE[i]}">${i}</th>` + row.map((n) => `<td>${n}</td>`).join("") + "</tr>";
  });
  table.innerHTML = html;
}

const fmt = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
const percent = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);

function onFrame(frame) {
  const now = performance.now();
  if (frame.epoch !== state.lastEpoch) state.frameTimes.push(now);
  state.frameTimes = state.frameTimes.filter((t) => now - t < 1000);
  if (frame.epoch < state.lastEpoch || frame.epoch === 0) state.history = [];
  if (frame.epoch > state.lastEpoch || !state.history.length) state.history.push([frame.epoch, frame.train_loss, frame.test_loss]);
  if (state.history.length > 1000) state.history = state.history.filter((_, i) => i % 2 === 0);
  state.lastEpoch = frame.epoch;
  state.frame = frame;
  if (!state.pending && JSON.stringify(frame.settings) !== JSON.stringify(state.settings)) applySettings(frame.settings);
  buildNetwork(frame);
  drawThumbnails(frame);
  drawLinks(frame);
  drawHeatmap();
  drawLossChart();
  drawConfusion(frame);
  drawLegend(frame);
  $("epoch").textContent = String(frame.epoch).padStart(6, "0").replace(/(\d{3})(\d{3})$/, "$1,$2");
  $("test-loss").textContent = fmt(frame.test_loss);
  $("train-loss").textContent = fmt(frame.train_loss);
  $("test-accuracy").textContent = percent(frame.test_accuracy);
  $("train-accuracy").textContent = percent(frame.train_accuracy);
  $("problem").textContent = frame.problem === "regression" ? "Regression" : `Classification (${frame.classes} classes)`;
  $("play").classList.toggle("playing", !!frame.playing);
  for (const backend of ["numpy", "numba"]) {
    const rate = frame.steps_per_second[backend];
    $(`rate-${backend}`).textContent = rate === undefined ? "–" : `${Math.round(rate)} steps/s`;
  }
  $("fps").textContent = frame.playing ? state.frameTimes.length : "–";
  $("stopped").textContent = frame.stopped ? `Stopped: ${frame.stopped}` : "";
  const options = ['<option value="">nothing (off)</option>'];
  const k = frame.problem === "regression" ? 0 : Math.min(6, Math.max(frame.classes + 1, 2));
  for (let c = 0; c < k; c++) options.push(`<option value="${c}">class ${c}</option>`);
  const select = $("click-class"), chosen = select.value;
  if (select.options.length !== options.length) { select.innerHTML = options.join(""); select.value = chosen; }
}

async function addPointAt(event) {
  const cls = $("click-class").value;
  if (cls === "") return;
  const rect = $("points").getBoundingClientRect();
  const x1 = ((event.clientX - rect.left) / rect.width) * 2 * RADIUS - RADIUS;
  const x2 = RADIUS - ((event.clientY - rect.top) / rect.height) * 2 * RADIUS;
  try {
    const answer = await api("POST", "api/points", { points: [[+x1.toFixed(3), +x2.toFixed(3), Number(cls)]] });
    applySettings(answer.settings);
  } catch (error) { showMessage(error.message, "data-message"); }
}

// ---- start ---------------------------------------------------------------------------------------

async function start() {
  buildControls();
  const fromURL = readURL();
  applyHide();
  if (Object.keys(fromURL).length) await configure(fromURL);
  else applySettings((await api("GET", "api/state")).settings);
  window.addEventListener("hashchange", () => {
    const changes = readURL();
    applyHide();
    configure(changes);
    drawPoints(); drawHeatmap();
  });
  window.addEventListener("resize", () => { state.structure = ""; if (state.frame) onFrame(state.frame); });
  const events = new EventSource("api/events");
  events.addEventListener("frame", (event) => onFrame(JSON.parse(event.data)));
  events.addEventListener("points", (event) => { state.points = JSON.parse(event.data); drawPoints(); });
  // The page's own handle for tests and the curious: the newest frame and settings.
  window.playground = state;
}

start();
