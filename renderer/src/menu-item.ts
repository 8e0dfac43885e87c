// One item of a menu (menu bar, right-click menus), as data; its own module so the stores can name it.
export interface MenuItem {
  id: string;
  label: string;
  action?: () => void;
  disabled?: boolean;
  /** Shown as the item's title when disabled. */
  reason?: string;
  /** A checkbox item (View → Properties Panel). */
  checked?: boolean;
  submenu?: MenuItem[];
  separatorBefore?: boolean;
}
