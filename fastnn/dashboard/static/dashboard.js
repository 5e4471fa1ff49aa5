// The fastnn dashboard: draws the frames that /api/events streams (see docs/dashboard.md).
// Plain canvas drawing, no library and nothing from the network.
"use strict";

const COLORS = { train: "#2f6fde", heldOut: "#e8730c", grid: "#e6e9ed", axis: "#66727f", ink: "#1f2933" };
const LAYER_COLORS = ["#2f6fde", "#e8730c", "#1c8a4a", "#9b3fc4", "#c62f2f", "#0f8a8a", "#b08a00", "#5b6b7b"];

let latest = null;      // the newest frame received
let drawn = null;       // the frame on screen
let events = null;      // the EventSource

// -- numbers ----------------------------------------------------------------------

function fmt(value, digits = 4) {
  if (value === null || value === undefined || !isFinite(value)) return "\u2013";
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e5)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

function percent(value) {
  return value === null || value === undefined ? "\u2013" : (100 * value).toFixed(2) + " %";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "\u2013";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

function niceTicks(low, high, count) {
  if (!(high > low)) { high = low + 1; }
  const raw = (high - low) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((k) => k * power).find((k) => k >= raw);
  const ticks = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

// -- canvas -----------------------------------------------------------------------

function surface(canvas, height) {
  if (height) canvas.style.height = height + "px";
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, width, height: h };
}

function placeholder(canvas, text) {
  const { ctx, width, height } = surface(canvas);
  ctx.fillStyle = COLORS.axis;
  ctx.textAlign = "center";
  ctx.fillText(text, width / 2, height / 2);
}

// A line chart. series: [{label, color, xs, ys, width, dash, dots}]; null ys leave gaps.
function lineChart(canvas, series, options = {}) {
  const log = Boolean(options.log);
  const ok = (y) => y !== null && isFinite(y) && (!log || y > 0);
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (const s of series) {
    s.xs.forEach((x, i) => {
      if (!ok(s.ys[i])) return;
      xMin = Math.min(xMin, x); xMax = Math.max(xMax, x);
      const y = log ? Math.log10(s.ys[i]) : s.ys[i];
      yMin = Math.min(yMin, y); yMax = Math.max(yMax, y);
    });
  }
  if (!isFinite(xMin)) { placeholder(canvas, options.empty || "no data yet"); return; }
  if (options.yMin !== undefined) yMin = Math.min(yMin, options.yMin);
  if (options.yMax !== undefined) yMax = Math.max(yMax, options.yMax);
  if (yMax - yMin < 1e-12) {  // a constant: centre it
    const half = log ? 0.5 : Math.abs(yMax) * 0.5 || 1;
    yMin -= half;
    yMax += half;
  }
  if (xMax === xMin) { xMax = xMin + 1; }
  const pad = (yMax - yMin) * 0.05;
  if (options.yMin === undefined) yMin -= pad;
  if (options.yMax === undefined) yMax += pad;

  const { ctx, width, height } = surface(canvas);
  const left = 52, right = 10, top = 8, bottom = 24;
  const px = (x) => left + ((x - xMin) / (xMax - xMin)) * (width - left - right);
  const py = (y) => top + (1 - (y - yMin) / (yMax - yMin)) * (height - top - bottom);

  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.axis;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const yTicks = log
    ? niceTicks(Math.floor(yMin), Math.ceil(yMax), 4).filter((v) => Number.isInteger(v) && v >= yMin && v <= yMax)
    : niceTicks(yMin, yMax, 4).filter((v) => v >= yMin && v <= yMax);
  for (const v of yTicks) {
    const y = Math.round(py(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(width - right, y); ctx.stroke();
    ctx.fillText(log ? fmt(Math.pow(10, v), 2) : fmt(v, 3), left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of niceTicks(xMin, xMax, Math.max(2, Math.floor((width - left) / 90)))) {
    if (v < xMin || v > xMax) continue;
    const x = Math.round(px(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, height - bottom); ctx.stroke();
    ctx.fillText(fmt(v, 6), x, height - bottom + 5);
  }
  if (options.xLabel) {
    ctx.textAlign = "right";
    ctx.fillText(options.xLabel, width - right, height - 11);
  }
  ctx.strokeStyle = COLORS.axis;
  ctx.beginPath(); ctx.moveTo(left + 0.5, top); ctx.lineTo(left + 0.5, height - bottom + 0.5);
  ctx.lineTo(width - right, height - bottom + 0.5); ctx.stroke();

  ctx.save();
  ctx.beginPath(); ctx.rect(left, top - 4, width - left - right + 4, height - top - bottom + 8); ctx.clip();
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = s.width || 1.5;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let drawing = false;
    s.xs.forEach((x, i) => {
      if (!ok(s.ys[i])) { drawing = false; return; }
      const X = px(x), Y = py(log ? Math.log10(s.ys[i]) : s.ys[i]);
      if (drawing) ctx.lineTo(X, Y); else ctx.moveTo(X, Y);
      drawing = true;
    });
    if (!s.dotsOnly) ctx.stroke();
    ctx.setLineDash([]);
    if (s.dots) {
      s.xs.forEach((x, i) => {
        if (!ok(s.ys[i])) return;
        ctx.beginPath();
        ctx.arc(px(x), py(log ? Math.log10(s.ys[i]) : s.ys[i]), s.dots, 0, 2 * Math.PI);
        ctx.fill();
      });
    }
  }
  ctx.restore();
}

function legend(element, series) {
  element.innerHTML = "";
  for (const s of series) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = s.color;
    if (s.dotsOnly) swatch.className = "dot";
    else if (s.dash) swatch.style.background = `repeating-linear-gradient(90deg, ${s.color} 0 4px, transparent 4px 7px)`;
    item.append(swatch, s.label);
    element.append(item);
  }
}

// Horizontal bars on a log axis: per layer, its weight norm and its gradient norm.
function normBars(canvas, layers) {
  if (!layers.length) { placeholder(canvas, "no layer with parameters"); return; }
  const rowHeight = 26;
  const { ctx, width, height } = surface(canvas, Math.max(120, layers.length * rowHeight + 30));
  const values = layers.flatMap((l) => [l.weight_norm, l.grad_norm]).filter((v) => v > 0);
  if (!values.length) { placeholder(canvas, "all norms are zero"); return; }
  const low = Math.floor(Math.log10(Math.min(...values))), high = Math.ceil(Math.log10(Math.max(...values)));
  const span = Math.max(1, high - low);
  const left = Math.min(170, width * 0.42), right = 12, top = 4, bottom = 22;
  const px = (v) => left + ((Math.log10(v) - low) / span) * (width - left - right);
  ctx.textBaseline = "top";
  ctx.textAlign = "center";
  for (let e = low; e <= high; e++) {
    const x = Math.round(px(Math.pow(10, e))) + 0.5;
    ctx.strokeStyle = COLORS.grid;
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, height - bottom); ctx.stroke();
    ctx.fillStyle = COLORS.axis;
    ctx.fillText("1e" + e, x, height - bottom + 5);
  }
  layers.forEach((layer, i) => {
    const y = top + i * rowHeight;
    ctx.fillStyle = COLORS.ink;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    let name = layer.name;
    while (ctx.measureText(name).width > left - 18 && name.length > 4) name = name.slice(0, -2);
    if (name !== layer.name) name = name.slice(0, -1) + "\u2026";
    ctx.fillText(name, left - 8, y + rowHeight / 2 - 1);
    [["weight_norm", COLORS.train, 3], ["grad_norm", COLORS.heldOut, 13]].forEach(([key, color, offset]) => {
      const v = layer[key];
      if (!(v > 0)) return;
      ctx.fillStyle = color;
      ctx.fillRect(left, y + offset, Math.max(1, px(v) - left), 8);
    });
  });
}

// Images (K, H, W, C) packed as base64 uint8, drawn as tiles with captions.
function tiles(container, packed, captions, size) {
  container.innerHTML = "";
  const bytes = Uint8Array.from(atob(packed.data), (c) => c.charCodeAt(0));
  const { height: h, width: w, channels: c } = packed;
  const count = bytes.length / (h * w * c);
  const scale = Math.max(1, Math.round(size / Math.max(h, w)));
  for (let k = 0; k < count; k++) {
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    canvas.style.width = w * scale + "px";
    canvas.style.height = h * scale + "px";
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      const base = (k * h * w + p) * c;
      image.data[4 * p] = bytes[base];
      image.data[4 * p + 1] = bytes[base + (c === 3 ? 1 : 0)];
      image.data[4 * p + 2] = bytes[base + (c === 3 ? 2 : 0)];
      image.data[4 * p + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    const figure = document.createElement("figure");
    figure.append(canvas);
    if (captions) {
      const caption = document.createElement("figcaption");
      caption.innerHTML = captions[k];
      figure.append(caption);
    }
    container.append(figure);
  }
}

function confusion(canvas, matrix) {
  const k = matrix.length;
  const { ctx, width, height } = surface(canvas);
  const left = 34, top = 8, bottom = 30;
  const side = Math.min(width - left - 8, height - top - bottom);
  const cell = side / k;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let i = 0; i < k; i++) {
    const total = matrix[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) {
      const share = total ? matrix[i][j] / total : 0;
      const x = left + j * cell, y = top + i * cell;
      const tint = i === j ? [28, 138, 74] : [198, 47, 47];
      ctx.fillStyle = `rgba(${tint.join(",")},${share === 0 ? 0.03 : 0.12 + 0.88 * share})`;
      ctx.fillRect(x + 0.5, y + 0.5, cell - 1, cell - 1);
      if (k <= 20 && cell >= 14) {
        ctx.fillStyle = share > 0.55 ? "#ffffff" : COLORS.ink;
        ctx.font = `${Math.min(12, Math.floor(cell * 0.42))}px system-ui, sans-serif`;
        ctx.fillText(String(matrix[i][j]), x + cell / 2, y + cell / 2);
      }
    }
  }
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = COLORS.axis;
  for (let i = 0; i < k; i++) {
    if (k <= 20) {
      ctx.fillText(String(i), left - 9, top + i * cell + cell / 2);
      ctx.fillText(String(i), left + i * cell + cell / 2, top + side + 9);
    }
  }
  ctx.fillText("predicted class \u2192", left + side / 2, top + side + 23);
  ctx.save();
  ctx.translate(10, top + side / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText("true class \u2192", 0, 0);
  ctx.restore();
}

// -- the page -----------------------------------------------------------------------

function byId(id) { return document.getElementById(id); }

function setStatus(status) {
  const pill = byId("status");
  pill.textContent = status;
  pill.className = "status " + status;
}

function drawHeader(frame) {
  const run = frame.run, pos = frame.position, time = frame.time;
  byId("run-summary").textContent =
    `${run.model} of ${run.layers} layers, ${run.parameters.toLocaleString()} parameters, ${run.optimizer}; ` +
    `${run.train_samples.toLocaleString()} training samples, batch ${run.batch_size}, ${run.epochs} epoch(s)` +
    (pos.stop_reason ? ` \u2014 stopped: ${pos.stop_reason}` : "");
  const done = pos.total_steps ? pos.step / pos.total_steps : 0;
  byId("progress-fill").style.width = Math.min(100, 100 * done).toFixed(1) + "%";
  const epoch = frame.status === "finished" ? pos.epochs_done : Math.min(pos.epochs_done + 1, run.epochs);
  byId("stat-epoch").textContent = `${epoch} / ${run.epochs}`;
  byId("stat-step").textContent = `${pos.step.toLocaleString()} / ${pos.total_steps.toLocaleString()}`;
  byId("stat-throughput").textContent = time.samples_per_second ? Math.round(time.samples_per_second).toLocaleString() : "\u2013";
  byId("stat-eta").textContent = frame.status === "finished" ? "done" : duration(time.eta);
  byId("stat-elapsed").textContent = duration(time.elapsed);
  byId("stat-lr").textContent = fmt(frame.lr, 3);
  byId("stat-cost").textContent = (100 * time.dashboard_share).toFixed(2) + " %";
  const held = frame.held_out;
  byId("stat-held-out-name").textContent = held ? `${held.name} accuracy` : "held-out accuracy";
  byId("stat-held-out").textContent = held ? percent(held.accuracy) : "none given";
  setStatus(frame.status === "finished" ? "finished" : "running");
}

function drawCurves(frame) {
  const steps = frame.steps, val = frame.validation, epochs = frame.epochs;
  const perStep = frame.run.steps_per_epoch;
  const epochSteps = epochs.loss.map((_, i) => (i + 1) * perStep);
  const name = frame.held_out ? frame.held_out.name : "held-out";
  for (const metric of ["loss", "accuracy"]) {
    const series = [
      { label: `train (per step)`, color: "rgba(47,111,222,0.35)", xs: steps.step, ys: steps[metric], width: 1 },
      { label: `train (per epoch)`, color: COLORS.train, xs: epochSteps, ys: epochs[metric], width: 2, dots: 3.5 },
    ];
    if (val.step.length) {
      series.push({ label: `${name} subset (per frame)`, color: COLORS.heldOut, xs: val.step, ys: val[metric], width: 1.5, dash: [4, 3] });
    }
    if (epochs["val_" + metric]) {
      series.push({ label: "validation (per epoch)", color: "#a64b00", xs: epochSteps, ys: epochs["val_" + metric], width: 2, dots: 3.5 });
    }
    const options = { xLabel: "step" };
    if (metric === "accuracy") options.yMax = 1;
    lineChart(byId(`${metric}-chart`), series, options);
    legend(byId(`${metric}-legend`), series);
  }
  lineChart(byId("lr-chart"), [{ label: "lr", color: COLORS.train, xs: steps.step, ys: steps.lr, width: 1.5 }], { xLabel: "step" });
}

function drawNorms(frame) {
  normBars(byId("norms-chart"), frame.layers);
  legend(byId("norms-legend"), [{ label: "weights ||W||", color: COLORS.train }, { label: "gradients ||dW||", color: COLORS.heldOut }]);
  const norms = frame.norms;
  const series = frame.layers.map((layer, i) => ({
    label: layer.name,
    color: LAYER_COLORS[i % LAYER_COLORS.length],
    xs: norms.step,
    ys: norms.grad.map((row) => row[i]),
    width: 1.5,
  }));
  lineChart(byId("grad-history-chart"), series, { log: true, xLabel: "step" });
  legend(byId("grad-history-legend"), series);
}

function drawFilters(frame) {
  const filters = frame.filters, box = byId("filters");
  if (!filters) {
    byId("filters-caption").textContent = "";
    box.innerHTML = '<p class="empty">the first layer with weights is not a Conv2D, nor a Dense layer on images</p>';
    return;
  }
  const what = filters.kind === "conv" ? "filters" : "units' weights as images";
  byId("filters-caption").textContent =
    `${filters.layer}: ${filters.shown} of ${filters.count} ${what}, ${filters.height}\u00d7${filters.width}`;
  tiles(box, filters, null, filters.kind === "conv" ? 40 : 48);
}

function drawHeldOut(frame) {
  const held = frame.held_out;
  const box = byId("misclassified");
  if (!held) {
    byId("confusion-caption").textContent = "";
    byId("misclassified-caption").textContent = "";
    placeholder(byId("confusion-chart"), "no validation data: pass validation_data");
    box.innerHTML = '<p class="empty">no validation data: pass validation_data (the CLI uses the test set)</p>';
    return;
  }
  if (held.confusion) {
    const correct = held.confusion.reduce((sum, row, i) => sum + row[i], 0);
    byId("confusion-caption").textContent = `${held.name}, ${correct} of ${held.samples} right (step ${held.step})`;
    confusion(byId("confusion-chart"), held.confusion);
  } else {
    placeholder(byId("confusion-chart"), "the targets are not classes");
  }
  const wrong = held.misclassified;
  if (!wrong) { box.innerHTML = '<p class="empty">the targets are not classes</p>'; return; }
  byId("misclassified-caption").textContent =
    `${wrong.count} of ${held.samples} ${held.name} samples` + (wrong.count > wrong.true.length ? `, first ${wrong.true.length}` : "");
  if (!wrong.count) { box.innerHTML = '<p class="empty">none: every sample is classified right</p>'; return; }
  const captions = wrong.true.map((t, i) => `${t} \u2192 <b>${wrong.predicted[i]}</b>`);
  if (wrong.data) tiles(box, wrong, captions, 44);
  else box.innerHTML = `<p class="empty">${captions.join(", ")} (samples #${wrong.index.join(", #")})</p>`;
}

function drawEpochs(frame) {
  const e = frame.epochs, body = byId("epochs-table").querySelector("tbody");
  body.innerHTML = "";
  e.loss.forEach((_, i) => {
    const row = document.createElement("tr");
    const cells = [i + 1, fmt(e.loss[i]), percent(e.accuracy[i]),
      e.val_loss ? fmt(e.val_loss[i]) : "\u2013", e.val_accuracy ? percent(e.val_accuracy[i]) : "\u2013",
      fmt(e.lr[i], 3), fmt(e.time[i], 3)];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    body.append(row);
  });
  if (!e.loss.length) body.innerHTML = '<tr><td colspan="7" class="empty">no epoch finished yet</td></tr>';
}

function draw() {
  const frame = latest;
  if (!frame || frame === drawn || !frame.run) return;
  drawn = frame;
  drawHeader(frame);
  drawCurves(frame);
  drawNorms(frame);
  drawFilters(frame);
  drawHeldOut(frame);
  drawEpochs(frame);
  document.body.dataset.frame = String(frame.frame);
  document.body.dataset.status = frame.status;
}

function receive(frame) {
  latest = frame;
  requestAnimationFrame(draw);
}

function connect() {
  fetch("api/state").then((r) => r.json()).then((frame) => { if (!latest) receive(frame); }).catch(() => {});
  events = new EventSource("api/events");
  events.addEventListener("frame", (message) => {
    const frame = JSON.parse(message.data);
    receive(frame);
    if (frame.status === "finished") events.close();  // the run is over: the page keeps this frame
  });
  events.onerror = () => {
    if (!latest || latest.status !== "finished") setStatus("disconnected");
  };
}

window.addEventListener("resize", () => { drawn = null; requestAnimationFrame(draw); });
connect();
