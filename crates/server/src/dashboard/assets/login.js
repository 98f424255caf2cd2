'use strict';
// The login page: sends the token once, as JSON, and goes to the dashboard with the session
// cookie the server set.
document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('login-form');
  const error = document.getElementById('login-error');
  const input = document.getElementById('token');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      const r = await fetch('/dashboard/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
        body: JSON.stringify({ token: input.value }),
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (r.ok) {
        input.value = '';
        location.assign('/');
        return;
      }
      let message = `${r.status} ${r.statusText}`;
      try {
        const body = await r.json();
        if (body && body.error && body.error.message) message = body.error.message;
      } catch (_) { /* not JSON: keep the status */ }
      if (r.status === 401) message = 'That token is not valid here.';
      error.textContent = message;
    } catch (e) {
      error.textContent = `The server could not be reached: ${e.message}`;
    }
    error.hidden = false;
    input.focus();
  });
});
