// Live rally map: the reference client of the Processor's live WebSocket protocol
// (docs/live-protocol.md). No libraries, no tiles: a canvas with lat/lon projected to fit
// the stage.
//
// Client rules implemented here (the SPA must do the same):
//  * connect with the session cookie (the browser sends it on the upgrade by itself);
//  * on open, subscribe to the event topic; the `subscribed` reply carries a snapshot;
//  * reconnect with jittered, capped exponential backoff and subscribe again;
//  * 60 s without any message (positions or keepalives) = dead link: close and reconnect;
//  * when a connection fails before opening (the browser only sees close code 1006), ask
//    `/users/me` to tell "logged out" (401) from "server unreachable";
//  * close 4401 (the session ended) means "log in again": no reconnect; the closes that name
//    a client bug (1002, 1007, 1009) are not retried either — reconnecting would repeat them.
"use strict";

const DEAD_LINK_MS = 60000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const TRAIL = 20;

// State exposed for tests (the browser e2e test reads it through WebDriver).
window.liveMapState = {
  connected: false,
  status: "starting",
  cars: {},               // deviceId -> {lat, lon, speed, course, ts, trail: [[lat, lon]…]}
  positionsReceived: 0,   // `position` messages (not snapshot entries)
  snapshotPositions: 0,
  connects: 0,
  lastMessageAt: 0,
  stopped: false,         // true once a close says reconnecting cannot help
};
const S = window.liveMapState;

let config = null;
let socket = null;
let attempt = 0;
let deadLinkTimer = null;
let nextId = 1;

function setStatus(text, ok) {
  S.status = text;
  const el = document.getElementById("state");
  el.textContent = text;
  el.className = ok ? "ok" : "bad";
}

function applyPosition(p) {
  let car = S.cars[p.deviceId];
  if (!car) car = S.cars[p.deviceId] = { trail: [] };
  if (car.ts && p.ts < car.ts) return; // older than what we show: ignore
  Object.assign(car, { lat: p.lat, lon: p.lon, speed: p.speed, course: p.course, ts: p.ts });
  car.trail.push([p.lat, p.lon]);
  if (car.trail.length > TRAIL) car.trail.shift();
}

function armDeadLink() {
  clearTimeout(deadLinkTimer);
  deadLinkTimer = setTimeout(() => {
    setStatus("no message for 60 s: reconnecting", false);
    if (socket) socket.close();
  }, DEAD_LINK_MS);
}

function connect() {
  setStatus("connecting", false);
  let opened = false;
  socket = new WebSocket(config.wsUrl);
  socket.onopen = () => {
    opened = true;
    attempt = 0;
    S.connected = true;
    S.connects += 1;
    setStatus("connected", true);
    armDeadLink();
    socket.send(JSON.stringify({ type: "subscribe", topic: config.topic, id: nextId++ }));
  };
  socket.onmessage = (event) => {
    S.lastMessageAt = Date.now();
    armDeadLink();
    const msg = JSON.parse(event.data);
    switch (msg.type) {
      case "subscribed":
        for (const p of msg.snapshot || []) { applyPosition(p); S.snapshotPositions += 1; }
        setStatus("live", true);
        break;
      case "position":
        S.positionsReceived += 1;
        applyPosition(msg);
        break;
      case "error":
        setStatus("error: " + msg.code + " " + (msg.message || ""), false);
        break;
      default: // keepalive, unsubscribed
        break;
    }
  };
  socket.onclose = (event) => {
    S.connected = false;
    clearTimeout(deadLinkTimer);
    if (event.code === 4401) {
      S.stopped = true;
      setStatus("session expired: log in again", false);
      return;
    }
    if (event.code === 1002 || event.code === 1007 || event.code === 1009) {
      S.stopped = true;
      setStatus("closed by the server (" + event.code + "): client error, not reconnecting", false);
      return;
    }
    if (!opened) diagnose(); else setStatus("disconnected", false);
    // Jittered, capped exponential backoff: random in [0.5, 1] of min(max, min * 2^attempt).
    const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
    attempt += 1;
    setTimeout(connect, cap * (0.5 + Math.random() / 2));
  };
}

// A refused upgrade looks like any network failure to a browser: ask Directus who we are.
async function diagnose() {
  try {
    const r = await fetch("/users/me", { credentials: "same-origin" });
    setStatus(r.status === 401 || r.status === 403 ? "logged out" : "processor unreachable, retrying", false);
  } catch (_) {
    setStatus("server unreachable, retrying", false);
  }
}

// --- drawing -------------------------------------------------------------------------------
const canvas = document.getElementById("map");
const ctx = canvas.getContext("2d");
let bounds = null;
let lastCount = 0;
let lastCountAt = Date.now();

function computeBounds(points) {
  let b = { minLat: 90, maxLat: -90, minLon: 180, maxLon: -180 };
  for (const [lat, lon] of points) {
    b.minLat = Math.min(b.minLat, lat); b.maxLat = Math.max(b.maxLat, lat);
    b.minLon = Math.min(b.minLon, lon); b.maxLon = Math.max(b.maxLon, lon);
  }
  return b;
}

// Equirectangular projection scaled to fit the canvas with a margin, keeping aspect ratio.
function project(lat, lon) {
  const w = canvas.width, h = canvas.height, m = 40;
  const k = Math.cos(((bounds.minLat + bounds.maxLat) / 2) * Math.PI / 180);
  const spanX = (bounds.maxLon - bounds.minLon) * k || 1e-6;
  const spanY = (bounds.maxLat - bounds.minLat) || 1e-6;
  const s = Math.min((w - 2 * m) / spanX, (h - 2 * m) / spanY);
  const ox = (w - spanX * s) / 2, oy = (h - spanY * s) / 2;
  return [ox + (lon - bounds.minLon) * k * s, h - (oy + (lat - bounds.minLat) * s)];
}

function draw() {
  canvas.width = window.innerWidth;
  canvas.height = window.innerHeight;
  ctx.fillStyle = "#20252b";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bounds) return;
  // The stage route.
  ctx.strokeStyle = "#8a7a5a"; ctx.lineWidth = 4; ctx.beginPath();
  config.stage.forEach(([lat, lon], i) => {
    const [x, y] = project(lat, lon);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  // Cars: trail, dot, label (last digits of the IMEI and speed).
  const ids = Object.keys(S.cars).sort();
  ids.forEach((id, i) => {
    const car = S.cars[id];
    const hue = (i * 137) % 360;
    ctx.strokeStyle = `hsla(${hue},90%,60%,0.6)`; ctx.lineWidth = 2; ctx.beginPath();
    car.trail.forEach(([lat, lon], j) => {
      const [x, y] = project(lat, lon);
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    const [x, y] = project(car.lat, car.lon);
    ctx.fillStyle = `hsl(${hue},90%,60%)`;
    ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#fff"; ctx.font = "12px system-ui";
    ctx.fillText(`${id.slice(-3)} ${car.speed ?? 0} km/h`, x + 10, y - 8);
  });
}

function updatePanel() {
  const now = Date.now();
  document.getElementById("cars").textContent = Object.keys(S.cars).length;
  document.getElementById("received").textContent = S.positionsReceived;
  const rate = (S.positionsReceived - lastCount) * 1000 / Math.max(1, now - lastCountAt);
  lastCount = S.positionsReceived; lastCountAt = now;
  document.getElementById("rate").textContent = rate.toFixed(1);
  document.getElementById("age").textContent =
    S.lastMessageAt ? ((now - S.lastMessageAt) / 1000).toFixed(1) + " s" : "-";
  S.carsDrawn = Object.keys(S.cars).length;
}

async function main() {
  config = await (await fetch("/config.json")).json();
  bounds = computeBounds(config.stage);
  connect();
  setInterval(updatePanel, 1000);
  (function frame() { draw(); requestAnimationFrame(frame); })();
}
main();
