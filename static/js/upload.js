/* Upload page: drag-and-drop of files or whole folders, one multipart POST to the API
 * (session cookie + CSRF header), a progress bar from XHR upload.onprogress, and the
 * server's verdict on every file. No libraries: the clinic network is offline. */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form) return;

  var zone = document.getElementById("dropzone");
  var pickFiles = document.getElementById("pick-files");
  var pickFolder = document.getElementById("pick-folder");
  var summary = document.getElementById("file-summary");
  var list = document.getElementById("file-list");
  var submitBtn = document.getElementById("upload-submit");
  var clearBtn = document.getElementById("upload-clear");
  var progressWrap = document.getElementById("progress-wrap");
  var progressBar = document.getElementById("upload-progress");
  var progressText = document.getElementById("progress-text");
  var result = document.getElementById("upload-result");
  var endpoint = form.getAttribute("data-endpoint");
  var studyUrl = form.getAttribute("data-study-url"); // contains the placeholder __id__
  var LIST_LIMIT = 300; // names shown before "and n more"
  // For JPEG/PNG: who and what the images are (DICOM files carry their own).
  var FIELDS = ["patient_id", "patient_name", "patient_birth_date", "patient_sex", "study_description", "study_date"];
  // The classifier ("" = the configured default); kept between uploads, unlike the patient.
  var MODEL_FIELD = "model";
  var PRIORITY_FIELD = "priority";

  var queue = []; // [{file: File, path: "folder/name.dcm"}]
  var seen = Object.create(null);
  var busy = false;

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    var units = ["KB", "MB", "GB"];
    var v = bytes / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 ? 1 : 0) + " " + units[i];
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ---- collecting files ----------------------------------------------------

  function add(items) {
    items.forEach(function (it) {
      var key = it.path + "\u0000" + it.file.size + "\u0000" + it.file.lastModified;
      if (seen[key]) return;
      seen[key] = true;
      queue.push(it);
    });
    renderQueue();
  }

  // readEntries answers in batches (100 at a time in Chromium): call until it is empty.
  function readAllEntries(reader) {
    return new Promise(function (resolve, reject) {
      var all = [];
      (function next() {
        reader.readEntries(function (batch) {
          if (!batch.length) { resolve(all); return; }
          all = all.concat(Array.prototype.slice.call(batch));
          next();
        }, reject);
      })();
    });
  }

  function walk(entry, out) {
    if (entry.isFile) {
      return new Promise(function (resolve, reject) { entry.file(resolve, reject); })
        .then(function (file) { out.push({ file: file, path: entry.fullPath.replace(/^\//, "") }); });
    }
    if (entry.isDirectory) {
      return readAllEntries(entry.createReader()).then(function (children) {
        return children.reduce(function (p, child) {
          return p.then(function () { return walk(child, out); });
        }, Promise.resolve());
      });
    }
    return Promise.resolve();
  }

  function filesFromDrop(dt) {
    // Entries must be taken synchronously, inside the drop event: the DataTransfer
    // is emptied once the handler returns.
    var entries = [];
    if (dt.items && dt.items.length && dt.items[0].webkitGetAsEntry) {
      for (var i = 0; i < dt.items.length; i++) {
        if (dt.items[i].kind !== "file") continue;
        var entry = dt.items[i].webkitGetAsEntry();
        if (entry) entries.push(entry);
      }
    }
    if (!entries.length) {
      return Promise.resolve(Array.prototype.map.call(dt.files, function (f) {
        return { file: f, path: f.name };
      }));
    }
    var out = [];
    return entries.reduce(function (p, e) {
      return p.then(function () { return walk(e, out); });
    }, Promise.resolve()).then(function () { return out; });
  }

  function fromInput(input) {
    return Array.prototype.map.call(input.files, function (f) {
      return { file: f, path: f.webkitRelativePath || f.name };
    });
  }

  // ---- rendering -----------------------------------------------------------

  function renderQueue() {
    list.textContent = "";
    if (!queue.length) {
      summary.textContent = "No files selected yet.";
      list.hidden = true;
      submitBtn.disabled = true;
      clearBtn.hidden = true;
      return;
    }
    var total = queue.reduce(function (s, it) { return s + it.file.size; }, 0);
    summary.textContent = queue.length + (queue.length === 1 ? " file" : " files") +
      " selected (" + humanSize(total) + ").";
    queue.slice(0, LIST_LIMIT).forEach(function (it) {
      list.appendChild(el("li", null, it.path + " — " + humanSize(it.file.size)));
    });
    if (queue.length > LIST_LIMIT) {
      list.appendChild(el("li", null, "… and " + (queue.length - LIST_LIMIT) + " more"));
    }
    list.hidden = false;
    submitBtn.disabled = busy;
    clearBtn.hidden = busy;
  }

  function clearQueue() {
    queue = [];
    seen = Object.create(null);
    pickFiles.value = "";
    pickFolder.value = "";
    renderQueue();
  }

  function renderResult(data) {
    result.textContent = "";
    var box = el("div", { "class": "panel", id: "upload-summary" });
    box.appendChild(el("h2", null, "Upload received"));

    var counts = el("div", { "class": "result-counts" });
    var acc = el("div");
    acc.appendChild(el("span", { "class": "num ok", id: "accepted-count" }, data.accepted));
    acc.appendChild(document.createTextNode("accepted"));
    var rej = el("div");
    var rejected = data.rejected || [];
    rej.appendChild(el("span", { "class": "num" + (rejected.length ? " bad" : ""), id: "rejected-count" }, rejected.length));
    rej.appendChild(document.createTextNode("rejected"));
    counts.appendChild(acc);
    counts.appendChild(rej);
    box.appendChild(counts);

    var studies = data.studies || [];
    if (studies.length) {
      box.appendChild(el("h3", null, studies.length === 1 ? "Study created" : studies.length + " studies created"));
      var ul = el("ul", { id: "created-studies" });
      studies.forEach(function (s) {
        var li = el("li");
        var href = studyUrl ? studyUrl.replace("__id__", encodeURIComponent(s.id)) : s.url;
        li.appendChild(el("a", { href: href }, "Study " + s.id + " — follow the analysis"));
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }

    if (rejected.length) {
      box.appendChild(el("h3", null, "Rejected files"));
      var wrap = el("div", { "class": "table-wrap" });
      var table = el("table", { "class": "list", id: "rejected-files" });
      var thead = el("thead");
      var hr = el("tr");
      hr.appendChild(el("th", { scope: "col" }, "File"));
      hr.appendChild(el("th", { scope: "col" }, "Reason"));
      thead.appendChild(hr);
      table.appendChild(thead);
      var tbody = el("tbody");
      rejected.forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", { "class": "mono" }, r.name));
        tr.appendChild(el("td", null, r.reason));
        tbody.appendChild(tr);
      });
      table.appendChild(tbody);
      wrap.appendChild(table);
      box.appendChild(wrap);
    }
    result.appendChild(box);
    box.focus && box.setAttribute("tabindex", "-1");
    box.focus && box.focus();
  }

  function renderError(status, body) {
    result.textContent = "";
    var box = el("div", { "class": "alert alert-danger", role: "alert", id: "upload-error" });
    var title = "The upload failed";
    if (status === 403) title = "The server refused the upload (signed out, or the security token expired): reload the page and try again.";
    else if (status === 413) title = "The upload is too large for the server. Split it, or send a ZIP.";
    else if (status === 0) title = "The connection to the server was lost during the upload.";
    else title = "The upload failed (HTTP " + status + ").";
    box.appendChild(el("strong", null, title));
    var detail = "";
    if (body) {
      try {
        var data = JSON.parse(body);
        detail = data.detail || Object.keys(data).map(function (k) {
          var v = data[k];
          return k + ": " + (Array.isArray(v) ? v.join(" ") : (typeof v === "string" ? v : JSON.stringify(v)));
        }).join("; ");
      } catch (e) { detail = ""; }
    }
    if (detail) box.appendChild(el("p", null, detail));
    result.appendChild(box);
  }

  function setProgress(loaded, total, label) {
    progressWrap.hidden = false;
    if (total) {
      progressBar.max = total;
      progressBar.value = loaded;
    } else {
      progressBar.removeAttribute("value"); // indeterminate
    }
    progressText.textContent = label;
  }

  function clearPatientFields() {
    FIELDS.forEach(function (name) {
      var field = form.elements[name];
      if (field) field.value = "";
    });
  }

  // ---- sending ---------------------------------------------------------------

  function upload(ev) {
    ev.preventDefault();
    if (!queue.length || busy) return;
    busy = true;
    submitBtn.disabled = true;
    clearBtn.hidden = true;
    result.textContent = "";

    var fd = new FormData();
    queue.forEach(function (it) { fd.append("files", it.file, it.path); });
    FIELDS.forEach(function (name) {
      var field = form.elements[name];
      if (field && field.value.trim()) fd.append(name, field.value.trim());
    });
    var modelField = form.elements[MODEL_FIELD];
    if (modelField && modelField.value) fd.append(MODEL_FIELD, modelField.value);
    var priorityField = form.elements[PRIORITY_FIELD];
    if (priorityField && priorityField.value) fd.append(PRIORITY_FIELD, priorityField.value);

    var xhr = new XMLHttpRequest();
    xhr.open("POST", endpoint);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) { setProgress(0, 0, "Uploading…"); return; }
      var pct = Math.floor((e.loaded / e.total) * 100);
      setProgress(e.loaded, e.total, "Uploading: " + humanSize(e.loaded) + " of " + humanSize(e.total) + " (" + pct + "%)");
    };
    xhr.upload.onload = function () {
      setProgress(1, 1, "Uploaded. The server is checking the files…");
    };
    xhr.onload = function () {
      busy = false;
      if (xhr.status >= 200 && xhr.status < 300) {
        var data;
        try { data = JSON.parse(xhr.responseText); } catch (e) { renderError(xhr.status, ""); renderQueue(); return; }
        setProgress(1, 1, "Done: the server answered for every file.");
        renderResult(data);
        clearQueue();
        clearPatientFields(); // so the next upload cannot land on this patient by mistake
      } else {
        setProgress(0, 1, "Upload failed.");
        renderError(xhr.status, xhr.responseText);
        renderQueue();
      }
    };
    xhr.onerror = function () {
      busy = false;
      setProgress(0, 1, "Upload failed.");
      renderError(0, "");
      renderQueue();
    };
    setProgress(0, 0, "Starting upload…");
    xhr.send(fd);
  }

  // ---- wiring ----------------------------------------------------------------

  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      zone.classList.add("is-over");
    });
  });
  ["dragleave", "dragend"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("is-over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    zone.classList.remove("is-over");
    summary.textContent = "Reading the dropped files…";
    filesFromDrop(e.dataTransfer).then(add, function (err) {
      summary.textContent = "Could not read the dropped items: " + (err && err.message ? err.message : err);
    });
  });
  // A file dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", function (e) { e.preventDefault(); });
  window.addEventListener("drop", function (e) { e.preventDefault(); });

  pickFiles.addEventListener("change", function () { add(fromInput(pickFiles)); });
  pickFolder.addEventListener("change", function () { add(fromInput(pickFolder)); });
  clearBtn.addEventListener("click", clearQueue);
  form.addEventListener("submit", upload);
  renderQueue();
})();
