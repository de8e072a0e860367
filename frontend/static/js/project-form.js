// The new-project form: the slug follows the name until the admin types a slug of their own.
// Without JavaScript the slug is typed by hand, as before.
(function () {
  "use strict";

  var name = document.getElementById("name");
  var slug = document.getElementById("slug");
  if (!name || !slug) {
    return;
  }
  var MAX = 63;
  // Typed by the admin (or sent back with the form): then it is theirs and stays.
  var ownSlug = slug.value !== "" && slug.value !== slugOf(name.value);

  function slugOf(text) {
    return text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+/, "")
      .slice(0, MAX)
      .replace(/-+$/, "");
  }

  name.addEventListener("input", function () {
    if (!ownSlug) {
      slug.value = slugOf(name.value);
    }
  });
  slug.addEventListener("input", function () {
    ownSlug = slug.value !== "";
  });
})();
