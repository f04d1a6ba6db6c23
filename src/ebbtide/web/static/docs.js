// Starts the vendored Swagger UI on /openapi.json (an external file, so the page's CSP needs no inline script).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
