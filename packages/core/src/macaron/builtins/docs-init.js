// Starts Swagger UI on the APIs macaron lists in #macaron-docs-config.
// A separate file rather than an inline script, so a strict Content-Security-Policy
// (script-src 'self') still lets the page run.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("macaron-docs-config").textContent);
  window.ui = SwaggerUIBundle({
    urls: config.urls,
    "urls.primaryName": config.primary,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    // Swagger UI would otherwise ask validator.swagger.io about every spec: no call leaves this page.
    validatorUrl: null,
    onComplete: function () {
      document.body.setAttribute("data-macaron-docs", "rendered");
    }
  });
})();
