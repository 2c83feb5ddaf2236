import { DASHBOARD_SCRIPT } from './dashboard-script.ts'

/** A small mark inline, so the browser asks the control plane for no /favicon.ico. */
const FAVICON = `data:image/svg+xml,${encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0969da"/><path d="M4 3v10h8" stroke="#fff" stroke-width="2" fill="none"/></svg>')}`

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #57606a; --line: #d0d7de; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8d96a0; --line: #30363d; --ok: #3fb950; --warn: #d29922; --bad: #f85149; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; gap: 1rem; align-items: center; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header.top h1 { font-size: 1.1rem; margin: 0; }
main { padding: 1rem 1.25rem; max-width: 1200px; }
form { display: flex; gap: .5rem; align-items: center; }
input, button { font: inherit; padding: .3rem .6rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
button { cursor: pointer; }
button:focus-visible, input:focus-visible, summary:focus-visible { outline: 2px solid #0969da; outline-offset: 2px; }
.connected #login, body:not(.connected) #logout, body:not(.connected) main { display: none; }
#status { min-height: 1.2em; margin: 0; }
#status.error { color: var(--bad); font-weight: 600; }
#updated { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { color: var(--muted); font-weight: 600; }
.id { color: var(--muted); font-size: .85em; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; border: 1px solid currentColor; font-size: .85em; }
.badge.ready, .badge.online { color: var(--ok); }
.badge.starting, .badge.downloading, .badge.draining, .badge.new { color: var(--warn); }
.download { font-size: .85em; color: var(--muted); }
.download progress { display: block; width: 12rem; }
.badge.failed, .badge.lost, .badge.offline, .badge.revoked, .badge.unavailable { color: var(--bad); }
.badge.stopped { color: var(--muted); }
.badge.cordoned { color: var(--warn); margin-left: .3rem; }
article.pool { border: 1px solid var(--line); border-radius: 8px; padding: .5rem 1rem; margin-bottom: 1rem; }
article.pool header { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
article.pool h3 { margin: .25rem 0; font-size: 1rem; }
.actions { margin-left: auto; display: flex; gap: .4rem; }
.charts { display: flex; gap: 1.5rem; flex-wrap: wrap; }
.chart { margin: .25rem 0; color: #0969da; }
.chart figcaption { color: var(--fg); font-size: .85em; }
.chart .frame { fill: rgba(127,127,127,.08); stroke: var(--line); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
pre { white-space: pre-wrap; max-height: 16rem; overflow: auto; background: rgba(127,127,127,.1); padding: .5rem; border-radius: 6px; font-size: .8rem; }
`

/**
 * `GET /`: the operator dashboard, one self-contained page (no framework, nothing fetched but
 * the admin API). The admin token or an admin API key is typed into the page.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>llorch dashboard</title>
<link rel="icon" href="${FAVICON}">
<style>${STYLE}</style>
</head>
<body>
<header class="top">
  <h1>llorch</h1>
  <form id="login" autocomplete="off">
    <label for="token">Admin token or admin API key</label>
    <input id="token" name="token" type="password" required spellcheck="false" size="36">
    <button type="submit">Connect</button>
  </form>
  <button id="logout" type="button">Disconnect</button>
  <span id="updated" aria-live="off"></span>
</header>
<p id="status" role="status" aria-live="polite"></p>
<main>
  <section aria-labelledby="pools-heading"><h2 id="pools-heading">Pools</h2><div id="pools"></div></section>
  <section aria-labelledby="nodes-heading"><h2 id="nodes-heading">Nodes</h2><div id="nodes"></div></section>
  <section aria-labelledby="batches-heading"><h2 id="batches-heading">Batches</h2><div id="batches"></div></section>
  <section aria-labelledby="keys-heading"><h2 id="keys-heading">API keys and usage</h2><div id="keys"></div></section>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`
