/**
 * A URL fit for a message or a log line: user info (`user:pass@`), query string and fragment
 * removed, since each can carry a credential (`?api_key=`, `#access_token=`). Never throws: a
 * string that is not a URL loses anything that looks like user info and a query.
 *
 * @example redactUrl("wss://u:p@db.example:8000/rpc?token=x") // "wss://db.example:8000/rpc"
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return String(url)
      .replace(/\/\/[^/@]*@/, "//***@")
      .replace(/^[^/@]*@/, "")
      .replace(/[?#].*$/, "");
  }
}
