// Driving the console's wizards in a real page as a user does: through the menu bar or a right-click
// menu, one step at a time, with a screenshot of every step (test-output/screenshots/).
import fs from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { REPO } from '../helpers/tools.js';

export const SHOTS = path.join(REPO, 'test-output', 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

export class WizardDriver {
  private n = 0;
  constructor(readonly page: Page, private readonly prefix: string) {}

  /** Controls of an open wizard that a screen reader could not name, per screenshot taken. */
  readonly unnamed: string[] = [];

  async shot(name: string): Promise<void> {
    this.n += 1;
    await this.page.screenshot({ path: path.join(SHOTS, `${this.prefix}-${String(this.n).padStart(2, '0')}-${name}.png`) });
    for (const u of await this.unnamedControls()) this.unnamed.push(`${name}: ${u}`);
  }

  /** Every visible control inside a wizard dialog with no accessible name (label, aria-label(ledby), text). */
  unnamedControls(): Promise<string[]> {
    return this.page.evaluate<string[]>(`(() => {
      const name = (el) => {
        const by = el.getAttribute('aria-labelledby');
        if (by) return by.split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
        if (el.getAttribute('aria-label')) return el.getAttribute('aria-label').trim();
        if (el.id && document.querySelector('label[for="' + el.id + '"]')) return document.querySelector('label[for="' + el.id + '"]').textContent.trim();
        if (el.closest('label')) return el.closest('label').textContent.trim();
        return (el.textContent ?? '').trim() || (el.getAttribute('title') ?? '').trim();
      };
      const dialogs = [...document.querySelectorAll('.wizard[role=dialog]')];
      return dialogs.flatMap((d) => [d, ...d.querySelectorAll('button, input, select, textarea, [role=group], fieldset, ol, ul')])
        .filter((el) => el.getClientRects().length > 0 && !name(el)).map((el) => el.outerHTML.slice(0, 120));
    })()`);
  }

  /** Menu bar: e.g. menu('Edit', 'Resource', 'Extend Resource Hierarchy…'). */
  async menu(...items: string[]): Promise<void> {
    await this.page.getByRole('menubar').getByRole('menuitem', { name: items[0], exact: true }).click();
    for (const item of items.slice(1)) await this.page.getByRole('menu').getByRole('menuitem', { name: item, exact: true }).last().click();
  }

  /** Right-click a grid cell ("TAG on SERVER") and choose an item. */
  async cellMenu(tag: string, server: string, item: string): Promise<void> {
    await this.cell(tag, server).click({ button: 'right' });
    await this.page.getByRole('menu').getByRole('menuitem', { name: item, exact: true }).click();
  }

  cell(tag: string, server: string): Locator {
    return this.page.getByRole('gridcell', { name: new RegExp(`^${tag.replace(/[.]/g, '\\.')} on ${server}:`) });
  }

  dialog(title: string): Locator {
    return this.page.getByRole('dialog', { name: title });
  }

  /** Waits for the step caption ("Step 2 of 6: Server and Type") and takes its screenshot. */
  async atStep(d: Locator, caption: string, shot: string): Promise<void> {
    await d.getByText(caption, { exact: false }).first().waitFor({ timeout: 60_000 });
    await this.shot(shot);
  }

  async press(d: Locator, label: string): Promise<void> {
    await d.getByRole('button', { name: label, exact: true }).click();
  }

  /** The error shown beside one field (WizardField's error paragraph, wired by aria-describedby). */
  async fieldError(d: Locator, label: string): Promise<string> {
    const control = d.getByLabel(label, { exact: true });
    const id = await control.getAttribute('id');
    return d.locator(`[id="${id}-error"]`).innerText();
  }
}
