// hazeflow dashboard: small conveniences only; every page works without this file.
(function () {
  'use strict';

  // Parts that need this script (reading a file into a textarea) stay hidden without it.
  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-js-only]').forEach(function (el) { el.hidden = false; });
  });

  // <button data-print>: the browser's print dialog (the page's print styles leave the forms out).
  document.addEventListener('click', function (e) {
    if (e.target.closest && e.target.closest('[data-print]')) window.print();
  });

  document.addEventListener('submit', function (e) {
    var form = e.target;
    var question = form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) {
      e.preventDefault();
      return;
    }
    // One click, one submission: disable the button once the browser has taken the form.
    var button = form.querySelector('button[type="submit"]');
    if (button) {
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
  });

  // <input type="file" data-fill="textarea-id" data-name="name-input-id">: read the file into the form.
  document.addEventListener('change', function (e) {
    var input = e.target;
    if (!input.matches || !input.matches('input[type="file"][data-fill]')) return;
    var target = document.getElementById(input.getAttribute('data-fill'));
    var nameField = document.getElementById(input.getAttribute('data-name'));
    var file = input.files && input.files[0];
    if (!file || !target) return;
    var reader = new FileReader();
    reader.onload = function () {
      target.value = reader.result;
      if (nameField && !nameField.value) nameField.value = file.name;
    };
    reader.readAsText(file, 'utf-8');
  });
})();
