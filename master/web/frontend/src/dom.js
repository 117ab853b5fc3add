// Small DOM helpers. Text goes in with textContent only: nothing a user or a notebook wrote is
// ever parsed as HTML.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  return node;
}

export function setText(id, text) {
  const node = document.getElementById(id);
  if (node) {
    node.textContent = text === null || text === undefined || text === '' ? '—' : String(text);
  }
}

export const TERMINAL = new Set(['complete', 'error', 'stopped', 'crashed']);

export function setStatus(node, status) {
  node.textContent = status;
  node.className = `status status-${String(status).replace(/[^a-z]/g, '')}`;
}

export function duration(seconds) {
  return seconds === null || seconds === undefined ? '' : `${Number(seconds).toFixed(1)} s`;
}
