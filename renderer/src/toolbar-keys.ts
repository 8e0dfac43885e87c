// Arrow keys within a toolbar (WAI-ARIA toolbar pattern): ←/→ move between its enabled buttons,
// Home/End to the first and last; Tab leaves the toolbar as usual.
export function onToolbarKey(e: KeyboardEvent): void {
  if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
  const bar = (e.currentTarget as HTMLElement | null);
  if (!bar) return;
  const buttons = [...bar.querySelectorAll<HTMLButtonElement>('button:not([disabled])')];
  if (!buttons.length) return;
  e.preventDefault();
  const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
  const next = e.key === 'Home' ? 0 : e.key === 'End' ? buttons.length - 1 : (i + (e.key === 'ArrowRight' ? 1 : -1) + buttons.length) % buttons.length;
  buttons[next]!.focus();
}
