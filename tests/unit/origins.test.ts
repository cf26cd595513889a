// The CORS_ORIGINS entries as a matcher: what each kind of entry admits, and
// what it must not (look-alike hosts, other schemes and ports, "null").
import { describe, expect, it } from "vitest";
import { DEVELOPMENT_ORIGINS, originPolicy, parseOriginList } from "../../src/http/origins.js";

const policy = (value: string) => originPolicy(parseOriginList(value));

describe("originPolicy", () => {
  it("admits an exact origin only, in any letter case and with or without its default port", () => {
    const exact = policy("https://app.example.com");
    expect(exact.allows("https://app.example.com")).toBe(true);
    expect(exact.allows("https://APP.example.com")).toBe(true);
    expect(exact.allows("https://app.example.com:443")).toBe(true);
    for (const other of [
      "http://app.example.com",
      "https://app.example.com:8443",
      "https://evil-app.example.com",
      "https://app.example.com.evil.example",
      "https://sub.app.example.com",
      "https://app.example.co",
      "null",
      "",
      "https://app.example.com/",
      "https://user@app.example.com",
    ]) {
      expect(exact.allows(other), other).toBe(false);
    }
  });

  it("admits any subdomain for *. but not the domain itself or a look-alike", () => {
    const subdomains = policy("https://*.example.com");
    expect(subdomains.allows("https://app.example.com")).toBe(true);
    expect(subdomains.allows("https://a.b.example.com")).toBe(true);
    expect(subdomains.allows("https://example.com")).toBe(false);
    expect(subdomains.allows("https://evilexample.com")).toBe(false);
    expect(subdomains.allows("https://app.example.com.evil.example")).toBe(false);
    expect(subdomains.allows("http://app.example.com")).toBe(false);
    expect(subdomains.allows("https://app.example.com:8443")).toBe(false);
  });

  it("admits any port, or none, for :*", () => {
    const local = originPolicy(DEVELOPMENT_ORIGINS);
    for (const origin of ["http://localhost:3000", "http://localhost:5173", "http://localhost", "http://127.0.0.1:8080"]) {
      expect(local.allows(origin), origin).toBe(true);
    }
    for (const origin of ["https://localhost:3000", "http://localhost.evil.example:3000", "http://127.0.0.2:3000", "http://192.168.1.2:3000", "http://[::1]:3000"]) {
      expect(local.allows(origin), origin).toBe(false);
    }
  });

  it("admits every http(s) origin for *, and none for none", () => {
    expect(policy("*").allows("https://anywhere.example")).toBe(true);
    expect(policy("none").allows("http://localhost:3000")).toBe(false);
  });

  it("admits an IPv6 origin written in brackets", () => {
    expect(policy("http://[::1]:5173").allows("http://[::1]:5173")).toBe(true);
    expect(policy("http://[::1]:5173").allows("http://[::1]:5174")).toBe(false);
  });
});
