// buzon webmail: the "select all" checkbox of a message list. The page works without it: the
// checkbox stays hidden until this script shows it.
"use strict";
document.querySelectorAll("input[data-all]").forEach(function (all) {
  var box = all.closest("label");
  if (box) box.hidden = false;
  all.addEventListener("change", function () {
    all.form.querySelectorAll('input[name="uid"]').forEach(function (c) {
      c.checked = all.checked;
    });
  });
});
