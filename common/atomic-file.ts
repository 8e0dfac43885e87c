// Writing a file so that a crash leaves either the old or the new content, never a torn one: a
// temporary file created with its final mode, fsynced, renamed over the target, the folder fsynced.
import fs from 'node:fs';
import path from 'node:path';

export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true }); // left by a crash of an earlier process with this pid
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.fchmodSync(fd, mode); // whatever the umask
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}
