// The history browser's page: the graph, a snapshot's details, its tree, an array and a plot.
// Text from the repository always goes in through textContent, never as HTML; the only HTML
// inserted is the server's SVG drawing, whose labels the server escapes.
"use strict";

const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function showError(where, error) {
  where.replaceChildren(element("span", String(error.message || error), "error"));
}

let snapshotsById = {};
let selected = null;

async function loadGraph() {
  try {
    const graph = await getJSON("/api/graph");
    $("graph").innerHTML = graph.svg;
    snapshotsById = {};
    for (const s of graph.snapshots) snapshotsById[s.id] = s;
    const branches = new Set(graph.snapshots.flatMap((s) => s.branches));
    $("status").textContent =
      `${graph.snapshots.length} snapshots, ${branches.size} branches — click a snapshot ` +
      "for its details";
    for (const node of $("graph").querySelectorAll("[data-snapshot]")) {
      node.addEventListener("click", () => selectSnapshot(node.dataset.snapshot));
    }
  } catch (error) {
    showError($("status"), error);
  }
}

function describe(label, value) {
  return [element("dt", label), element("dd", value)];
}

async function selectSnapshot(id) {
  selected = id;
  for (const node of $("graph").querySelectorAll("[data-snapshot]")) {
    node.classList.toggle("selected", node.dataset.snapshot === id);
  }
  $("details").hidden = false;
  $("array").hidden = true;
  const known = snapshotsById[id];
  $("snapshot-title").textContent = `snapshot ${known ? known.short_id : id}`;
  try {
    const info = await getJSON(`/api/snapshot/${id}`);
    if (selected !== id) return;
    const refs = [...info.branches, ...info.tags];
    $("snapshot-title").textContent =
      `snapshot ${info.short_id}` + (refs.length ? ` (${refs.join(", ")})` : "");
    const meta = element("dl");
    meta.append(
      ...describe("id", info.id),
      ...describe("parent", info.parent_id || "none (the first snapshot)"),
      ...describe("written", new Date(info.written_at).toLocaleString()),
      ...describe("message", info.message),
      ...describe("metadata", JSON.stringify(info.metadata)),
    );
    $("snapshot-meta").replaceChildren(meta);
    if (info.changes === null) {
      $("diff").textContent = "The repository's first snapshot: nothing before it.";
    } else {
      $("diff").textContent = info.changes.text.trim() || "No changes.";
    }
  } catch (error) {
    showError($("snapshot-meta"), error);
  }
  loadTree(id);
}

function shapeText(node) {
  let text = ` [${node.shape.join(" × ")}] ${node.dtype}`;
  if (node.chunks) text += `, chunks ${JSON.stringify(node.chunks)}`;
  return text;
}

async function loadTree(id) {
  const list = $("tree");
  list.replaceChildren(element("li", "loading…"));
  try {
    const tree = await getJSON(`/api/tree/${id}`);
    if (selected !== id) return;
    list.replaceChildren();
    if (!tree.nodes.length) list.append(element("li", "(empty: no groups or arrays yet)"));
    for (const node of tree.nodes) {
      const depth = node.path === "/" ? 0 : node.path.split("/").length - 1;
      const name = node.path === "/" ? "/" : node.path.split("/").pop();
      const item = element("li", undefined, node.type);
      item.style.paddingLeft = `${depth * 1.2}em`;
      item.append(element("span", node.type === "group" && name !== "/" ? name + "/" : name));
      if (node.type === "array") {
        item.append(element("span", shapeText(node), "info"));
        item.addEventListener("click", () => showArray(id, node.path));
      }
      const attrs = Object.keys(node.attributes);
      if (attrs.length) item.append(element("span", `  {${attrs.join(", ")}}`, "info"));
      list.append(item);
    }
  } catch (error) {
    showError(list, error);
  }
}

async function showArray(id, path) {
  $("array").hidden = false;
  $("array-title").textContent = path;
  const table = $("array-meta");
  table.replaceChildren();
  $("plot").replaceChildren();
  try {
    const a = await getJSON(`/api/array/${id}?path=${encodeURIComponent(path)}`);
    const rows = [
      ["shape", JSON.stringify(a.shape)],
      ["dtype", a.dtype],
      ["chunks", JSON.stringify(a.chunks)],
      ["dimensions", JSON.stringify(a.dimension_names)],
      ["fill value", JSON.stringify(a.fill_value)],
      ["chunks written", `${a.chunks_written} of ${a.chunks_total}`],
      ["bytes stored", a.bytes_stored.toLocaleString()],
      ["attributes", JSON.stringify(a.attributes)],
    ];
    for (const [key, value] of rows) {
      const row = element("tr");
      row.append(element("td", key), element("td", value));
      table.append(row);
    }
    $("slice").value = "";
    $("slice-form").onsubmit = (event) => {
      event.preventDefault();
      plot(id, path, $("slice").value);
    };
    plot(id, path, "");
  } catch (error) {
    showError(table, error);
  }
}

async function plot(id, path, selection) {
  const where = $("plot");
  where.replaceChildren(element("span", "reading values…"));
  try {
    let url = `/api/values/${id}?path=${encodeURIComponent(path)}`;
    if (selection) url += `&slice=${encodeURIComponent(selection)}`;
    const data = await getJSON(url);
    $("slice").value = data.selection;
    where.replaceChildren();
    if (data.shape.length === 1) where.append(linePlot(data.values));
    else if (data.shape.length === 2) where.append(heatmap(data.values));
    else where.append(element("span", `value: ${JSON.stringify(data.values)}`));
  } catch (error) {
    showError(where, error);
  }
}

function range(values) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  return [lo, hi];
}

function linePlot(values) {
  const ns = "http://www.w3.org/2000/svg";
  const width = 560, height = 220, pad = 40;
  const [lo, hi] = range(values);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "line-plot");
  const x = (i) => pad + (values.length > 1 ? (i * (width - 2 * pad)) / (values.length - 1) : 0);
  const y = (v) => height - pad - ((v - lo) * (height - 2 * pad)) / (hi - lo);
  const points = values
    .map((v, i) => (typeof v === "number" ? `${x(i)},${y(v)}` : null))
    .filter((p) => p !== null);
  const axis = document.createElementNS(ns, "path");
  axis.setAttribute("d", `M ${pad} ${pad / 2} V ${height - pad} H ${width - pad / 2}`);
  axis.setAttribute("stroke", "#999");
  axis.setAttribute("fill", "none");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1f77b4");
  line.setAttribute("stroke-width", "1.5");
  svg.append(axis, line);
  for (const [text, ty] of [[hi, pad], [lo, height - pad]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2);
    label.setAttribute("y", ty + 4);
    label.setAttribute("font-size", "10");
    label.textContent = Number(text.toPrecision(4)).toString();
    svg.append(label);
  }
  return svg;
}

// A perceptual blue-to-yellow ramp (five stops, linearly interpolated).
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

function colour(t) {
  const scaled = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(scaled), RAMP.length - 2);
  const f = scaled - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}

function heatmap(rows) {
  const height = rows.length, width = rows.length ? rows[0].length : 0;
  const [lo, hi] = range(rows.flat());
  const scale = Math.max(1, Math.floor(400 / Math.max(width, height, 1)));
  const canvas = element("canvas");
  canvas.className = "heatmap";
  canvas.width = width * scale;
  canvas.height = height * scale;
  const ctx = canvas.getContext("2d");
  rows.forEach((row, r) => row.forEach((v, c) => {
    const [red, green, blue] =
      typeof v === "number" ? colour((v - lo) / (hi - lo)) : [200, 200, 200];
    ctx.fillStyle = `rgb(${red},${green},${blue})`;
    ctx.fillRect(c * scale, r * scale, scale, scale);
  }));
  return canvas;
}

loadGraph();
