// Serves the demo page and the installed `keyseal` package on loopback:
//   node sdk-wasm/demo/serve.mjs <project-dir-with-node_modules> [port]
// then open the URL it prints. The browser test starts it on a free port.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/** Starts the server; resolves to { url, close }. */
export function serve(projectDir, port = 0) {
  const demoDir = fileURLToPath(new URL('.', import.meta.url));
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = path.startsWith('/node_modules/keyseal/')
      ? join(resolve(projectDir), path)
      : join(demoDir, path === '/' ? 'index.html' : path);
    try {
      if (path.includes('..')) throw new Error('no');
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((ok) =>
    server.listen(port, '127.0.0.1', () =>
      ok({ url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() }),
    ),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [projectDir = '.', port = '8080'] = process.argv.slice(2);
  const { url } = await serve(projectDir, Number(port));
  console.log(`keyseal demo: ${url}`);
}
