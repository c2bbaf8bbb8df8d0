// Node-only state adapter (`keyseal/node`): the validator's state in a file,
// written like sdk-rust's FileStateStore (temporary file, flush, rename), so
// a crash leaves the old state or the new one.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

let counter = 0;

/** State in the file at `path` (created with its directory on first save). */
export function fileState(path) {
  return {
    get() {
      try {
        return readFileSync(path);
      } catch (e) {
        if (e && e.code === 'ENOENT') return null;
        throw e;
      }
    },
    set(text) {
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.tmp.${process.pid}.${counter++}`;
      try {
        const fd = openSync(tmp, 'w', 0o600);
        try {
          writeSync(fd, text);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        renameSync(tmp, path);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
    },
  };
}
