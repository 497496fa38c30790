// contrast.mjs - WCAG 2.1 AA colour contrast of every visible text on a page:
// 4.5:1 for normal text, 3:1 for large text (at least 24 px, or 18.66 px
// bold). The text's colour is its computed colour; its background is the
// first opaque background colour found walking up from the element (the page
// is white where none is set). Measured with Playwright's evaluate, which runs
// over the DevTools protocol even when the page's own JavaScript is off.
export async function contrastFailures(page) {
  return page.evaluate(() => {
    const parse = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const p = m[1].split(',').map((x) => parseFloat(x));
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const lum = (c) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
      return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    };
    const bgOf = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a >= 0.99) return c;
      }
      return { r: 255, g: 255, b: 255, a: 1 };
    };
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const text = n.textContent.trim();
      if (!text) continue;
      const el = n.parentElement;
      const st = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      if (st.visibility === 'hidden' || st.display === 'none' || box.width === 0 || box.height === 0) continue;
      const fg = parse(st.color);
      if (!fg) continue;
      const bg = bgOf(el);
      const l1 = lum(fg), l2 = lum(bg);
      const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      const size = parseFloat(st.fontSize);
      const bold = parseInt(st.fontWeight, 10) >= 700;
      const large = size >= 24 || (bold && size >= 18.66);
      const need = large ? 3 : 4.5;
      if (ratio + 1e-9 < need) out.push(`"${text.slice(0, 40)}" ${st.color} on rgb(${bg.r}, ${bg.g}, ${bg.b}): ${ratio.toFixed(2)} < ${need}`);
    }
    return out;
  });
}
