// The app entry, named the way Vite/Rollup names its output: [name]-[hash].js
import { formatBytes, describeEncoding } from "./format-Bq7xK2pL.js";

const root = document.getElementById("app");

async function describe(url) {
  const response = await fetch(url, { method: "HEAD" });
  const encoding = response.headers.get("content-encoding") || "identity";
  const length = Number(response.headers.get("content-length") || 0);
  return {
    url,
    status: response.status,
    encoding: describeEncoding(encoding),
    size: formatBytes(length),
    cacheControl: response.headers.get("cache-control"),
    etag: response.headers.get("etag"),
  };
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell ?? "";
    tr.append(td);
  }
  return tr;
}

async function main() {
  if (!root) return;
  const greeting = document.createElement("p");
  greeting.textContent = root.dataset.greeting;
  root.append(greeting);

  const table = document.createElement("table");
  table.append(row(["URL", "status", "encoding", "size", "Cache-Control", "ETag"]));
  const urls = ["/", "/css/site.0123456789ab.css", "/assets/app-3fA9c1bd.js", "/img/logo.svg"];
  for (const url of urls) {
    try {
      const info = await describe(url);
      table.append(row([info.url, String(info.status), info.encoding, info.size, info.cacheControl, info.etag]));
    } catch (error) {
      table.append(row([url, "error", String(error)]));
    }
  }
  root.append(table);
}

main();
//# sourceMappingURL=app-3fA9c1bd.js.map
