// Render the OpenAPI document with Swagger UI (served by this project: no CDN, no other host).
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    // The default sends the document to an online validator for a badge: no requests to other hosts.
    validatorUrl: null,
  });
});
