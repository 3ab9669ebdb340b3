// A shared chunk, as Vite splits them: [name]-[hash].js
const UNITS = ["B", "KiB", "MiB", "GiB"];

export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

export function describeEncoding(token) {
  switch (token) {
    case "br":
      return "brotli";
    case "gzip":
      return "gzip (zopfli)";
    case "zstd":
      return "zstandard";
    default:
      return "none";
  }
}
