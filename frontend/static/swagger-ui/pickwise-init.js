// Starts Swagger UI on /api/docs from files served by pickwise itself (no CDN, no inline
// script), so the page works under the Content-Security-Policy and offline.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    oauth2RedirectUrl: window.location.origin + root.dataset.oauth2RedirectUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
