// The few POSIX path operations the shared checks need, without node:path (the renderer runs them too).
// Paths here are always those of a Linux node.

export const posixIsAbsolute = (p: string): boolean => p.startsWith('/');

/** Collapses "//", "." and ".." of an absolute path; a relative path is returned as given. */
export function posixNormalize(p: string): string {
  if (!posixIsAbsolute(p)) return p;
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

export function posixBasename(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

export function posixJoin(...parts: string[]): string {
  return posixNormalize(parts.filter(Boolean).join('/'));
}
