import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Why real block devices cannot be used here, or null when they can (root, losetup, mkfs.ext4). */
export function loopDevicesUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for loop devices and mounts';
  for (const tool of ['losetup', 'mkfs.ext4', 'fsck.ext4', 'mount']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  if (!fs.existsSync('/dev/loop-control')) return 'this kernel has no loop devices (/dev/loop-control missing)';
  return null;
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

/** Attaches a file to a free loop device; returns the device path. */
export function attachLoop(image: string): string {
  return run('losetup', ['--find', '--show', image]);
}

export function detachLoop(device: string): void {
  run('losetup', ['--detach', device]);
}

export function mount(device: string, dir: string, readOnly = false): void {
  fs.mkdirSync(dir, { recursive: true });
  run('mount', readOnly ? ['-o', 'ro', device, dir] : [device, dir]);
}

export function umount(dir: string): void {
  run('umount', [dir]);
}

/**
 * A sparse image file of `sizeMiB` with an ext4 filesystem holding copies of `trees`
 * (real directories, e.g. /usr/include), each under its base name.
 */
export function makeExt4Image(image: string, sizeMiB: number, trees: string[], mountDir: string): void {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  run('mkfs.ext4', ['-q', '-F', image]);
  const dev = attachLoop(image);
  try {
    mount(dev, mountDir);
    try {
      for (const t of trees) run('cp', ['-a', t, path.join(mountDir, path.basename(t))]);
    } finally {
      umount(mountDir);
    }
  } finally {
    detachLoop(dev);
  }
}

/**
 * Changes about `bytes` of file content in a mounted tree: rewrites whole files (largest first,
 * skipping the first few so that the change is spread), the way an update of a package would.
 * Returns the bytes written.
 */
export function changeFiles(root: string, bytes: number): number {
  const files: { file: string; size: number }[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push({ file: p, size: fs.statSync(p).size });
    }
  };
  walk(root);
  files.sort((a, b) => b.size - a.size || a.file.localeCompare(b.file));
  let written = 0;
  for (let i = 3; i < files.length && written < bytes; i += 7) {
    const { file, size } = files[i]!;
    fs.writeFileSync(file, randomBytes(size));
    written += size;
  }
  return written;
}
