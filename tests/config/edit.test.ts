// In-place TOML edits (host/src/config/edit.ts): a set changes one line and keeps comments; what
// cannot be edited in place is rewritten from the values, and the caller is told.
import { describe, expect, it } from "vitest";
import { lineDiff, locateKey, parseKeyPath, setTomlValue } from "../../host/src/config/edit.js";

describe("setTomlValue", () => {
  it("replaces a key's line, keeping its trailing comment and every other line", () => {
    const text = '# top\n[gateway]\nport = 7200   # the port\nbind = "127.0.0.1"\n';
    const r = setTomlValue(text, ["gateway", "port"], 7300);
    expect(r).toEqual({ text: '# top\n[gateway]\nport = 7300   # the port\nbind = "127.0.0.1"\n', keptComments: true });
  });

  it("inserts a new key after the table's last key, and appends a new table or array entry", () => {
    let t = "# note\n[gateway]\nport = 1\n\n# trailing comment\n";
    t = setTomlValue(t, ["gateway", "bind"], "0.0.0.0").text;
    expect(t).toBe('# note\n[gateway]\nport = 1\nbind = "0.0.0.0"\n\n# trailing comment\n');
    const r = setTomlValue(t, ["agents", 0, "id"], "main");
    expect(r.keptComments).toBe(true);
    expect(r.text.endsWith('# trailing comment\n\n[[agents]]\nid = "main"\n')).toBe(true);
  });

  it("a key inside an inline table cannot be edited in place: rewritten from values, keptComments false", () => {
    const r = setTomlValue('# c\n[plugins.grants.t]\nhttp = { hosts = ["a.example"] }\n', ["plugins", "grants", "t", "http", "methods"], ["GET"]);
    expect(r.keptComments).toBe(false);
    expect(r.text).not.toContain("# c");
    expect(r.text).toContain("methods");
  });
});

describe("helpers", () => {
  it("parseKeyPath reads indices and quoted segments", () => {
    expect(parseKeyPath("agents.0.model")).toEqual(["agents", 0, "model"]);
    expect(parseKeyPath('plugins.grants."my.plugin".clock')).toEqual(["plugins", "grants", "my.plugin", "clock"]);
    expect(() => parseKeyPath("a..b")).toThrow("is not a key path");
  });

  it("locateKey finds a key's line, else its table's", () => {
    const text = '[gateway]\nport = 1\n\n[[agents]]\nid = "a"\n[[agents]]\nid = "b"\n';
    expect(locateKey(text, ["gateway", "port"])).toBe(2);
    expect(locateKey(text, ["agents", 1, "id"])).toBe(7);
    expect(locateKey(text, ["agents", 1, "model"])).toBe(6);
  });

  it("lineDiff prints a changed line as - then +", () => {
    expect(lineDiff("a\nb\nc", "a\nB\nc")).toEqual(["  a", "- b", "+ B", "  c"]);
    expect(lineDiff("same", "same")).toEqual([]);
  });
});
