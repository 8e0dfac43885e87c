// Wizard name → component. Each wizard is a component with props { context: WizardContext } that
// emits 'close' when it is finished or cancelled. WizardHost renders the open one.
import type { Component } from 'vue';
import type { WizardName } from '../stores/wizards.js';

export const wizards: Partial<Record<WizardName, Component>> = {};
