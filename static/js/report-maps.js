// The report page's map viewer. A static file: the Content-Security-Policy allows scripts from
// 'self' only. Nothing here asks the server for anything: the opacity is CSS on the stored
// heatmap PNG already shown, and the blended saliency view is drawn on a canvas from the
// preview and the saliency PNG the page has already loaded.
(() => {
  "use strict";

  // ---- Grad-CAM: one opacity for every slice's heatmap layer (0.4 = the stored overlay's blend).
  const slider = document.getElementById("heat-opacity");
  const shown = document.getElementById("heat-opacity-value");
  document.querySelectorAll("#map-controls .js-only").forEach((el) => { el.hidden = false; });
  if (slider) {
    const apply = () => {
      const value = Math.min(1, Math.max(0, Number(slider.value)));
      document.querySelectorAll("[data-heat-layer]").forEach((layer) => { layer.style.opacity = String(value); });
      if (shown) shown.value = value.toFixed(2);
    };
    slider.addEventListener("input", apply);
    apply();
  }

  const whenLoaded = (img, then) => {
    if (img.complete && img.naturalWidth > 0) then();
    else img.addEventListener("load", then, { once: true });
  };

  // The stack takes the preview's own aspect ratio once it has loaded (the server's guess
  // comes from the scan's stored rows and columns, which older rows may lack). Past the
  // first slices the preview under the heatmap is set once the (lazy) heatmap has loaded,
  // so a long report does not fetch every preview up front.
  document.querySelectorAll(".slice").forEach((slice) => {
    const preview = slice.querySelector("img[data-preview]");
    const stack = slice.querySelector("[data-heat-stack]");
    if (!preview || !stack) return;
    const layer = stack.querySelector("[data-heat-layer]");
    if (layer && !stack.style.backgroundImage) {
      whenLoaded(layer, () => {
        stack.style.backgroundImage = `url("${stack.dataset.previewSrc.replace(/["\\]/g, "\\$&")}")`;
      });
    }
    whenLoaded(preview, () => {
      const w = preview.naturalWidth, h = preview.naturalHeight;
      stack.style.aspectRatio = `${w} / ${h}`;
      stack.style.width = w >= h ? "100%" : `${(100 * w / h).toFixed(3)}%`;
    });
  });

  // ---- Saliency blended with the image, as the seed drew it (ml.explain.overlay.blend with
  // cmap="hot", alpha=0.7, alpha_by_value=True): out = (1 - 0.7 v) grey + 0.7 v colour, where
  // v is the map's value. The stored PNG holds hot(v); hot's r + g + b rises with v, piece by
  // piece, so v is read back from the colour's sum.
  const ALPHA = 0.7;
  const HOT_R = 0.365079, HOT_G = 0.746032;  // where hot's red, then green, reach 1
  const hotValue = (r, g, b) => {
    const s = (r + g + b) / 255;
    if (s <= 1) return s * HOT_R;
    if (s <= 2) return HOT_R + (s - 1) * (HOT_G - HOT_R);
    return HOT_G + Math.min(1, s - 2) * (1 - HOT_G);
  };

  const drawBlend = (canvas, preview, saliency) => {
    // The saliency PNG is the map (the preview's aspect) plus a colour bar on its right.
    const h = saliency.naturalHeight;
    const w = Math.min(saliency.naturalWidth, Math.round(h * preview.naturalWidth / preview.naturalHeight));
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    try {
      ctx.drawImage(preview, 0, 0, w, h);
      const grey = ctx.getImageData(0, 0, w, h);
      ctx.drawImage(saliency, 0, 0, w, h, 0, 0, w, h);
      const heat = ctx.getImageData(0, 0, w, h);
      const g = grey.data, c = heat.data;
      for (let i = 0; i < c.length; i += 4) {
        const a = ALPHA * hotValue(c[i], c[i + 1], c[i + 2]);
        c[i] = Math.round((1 - a) * g[i] + a * c[i]);
        c[i + 1] = Math.round((1 - a) * g[i + 1] + a * c[i + 1]);
        c[i + 2] = Math.round((1 - a) * g[i + 2] + a * c[i + 2]);
        c[i + 3] = 255;
      }
      ctx.putImageData(heat, 0, 0);
      canvas.dataset.drawn = "true";
    } catch (err) {  // images from another origin taint the canvas: keep the map on black
      canvas.dataset.drawn = "failed";
      canvas.hidden = true;
    }
  };

  const setSaliencyMode = (mode) => {
    document.querySelectorAll("[data-sal-mode]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.salMode === mode));
    });
    document.querySelectorAll(".slice").forEach((slice) => {
      const canvas = slice.querySelector("[data-sal-blend]");
      const saliency = slice.querySelector("img[data-sal-black]");
      const preview = slice.querySelector("img[data-preview]");
      const caption = slice.querySelector("[data-sal-caption]");
      if (!canvas || !saliency || !preview) return;
      const blended = mode === "blend";
      if (caption) caption.textContent = blended ? " (blended with the image)" : " (on black)";
      if (!blended) { canvas.hidden = true; return; }
      const show = () => {
        if (canvas.dataset.drawn !== "true") drawBlend(canvas, preview, saliency);
        canvas.hidden = canvas.dataset.drawn !== "true" || document.querySelector("#sal-blend")?.getAttribute("aria-pressed") !== "true";
      };
      // The saliency image stays in the layout under the canvas, so a lazy one still loads.
      whenLoaded(preview, () => whenLoaded(saliency, show));
    });
  };
  document.querySelectorAll("[data-sal-mode]").forEach((button) => {
    button.addEventListener("click", () => setSaliencyMode(button.dataset.salMode));
  });
})();
