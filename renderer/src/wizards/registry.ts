// Wizard name → component. Each wizard is a component with props { context: WizardContext } that
// emits 'close' when it is finished or cancelled. WizardHost renders the open one.
import { defineComponent, h, type Component, type PropType } from 'vue';
import type { WizardContext, WizardName } from '../stores/wizards.js';
import AddServerWizard from './AddServerWizard.vue';
import CreateHierarchyWizard from './CreateHierarchyWizard.vue';
import DependencyWizard from './DependencyWizard.vue';
import ExtendWizard from './ExtendWizard.vue';
import LocalLabWizard from './LocalLabWizard.vue';
import ServerResourceWizard, { type ServerResourceAction } from './ServerResourceWizard.vue';
import RewindWizard from './rewind/RewindWizard.vue';

/** One shared component in a given mode, with the registry's props and event. */
function variant(name: string, inner: Component, extra: Record<string, unknown>): Component {
  return defineComponent({
    name,
    props: { context: { type: Object as PropType<WizardContext>, required: true } },
    emits: ['close'],
    setup: (props, { emit }) => () => h(inner, { ...extra, context: props.context, onClose: () => emit('close') }),
  });
}

const serverResource = (action: ServerResourceAction) => variant(`${action}-wizard`, ServerResourceWizard, { action });

export const wizards: Partial<Record<WizardName, Component>> = {
  'add-server': AddServerWizard,
  'create-hierarchy': CreateHierarchyWizard,
  extend: ExtendWizard,
  unextend: serverResource('unextend'),
  delete: serverResource('delete'),
  'in-service': serverResource('in-service'),
  'out-of-service': serverResource('out-of-service'),
  'create-dependency': variant('create-dependency-wizard', DependencyWizard, { action: 'create' }),
  'delete-dependency': variant('delete-dependency-wizard', DependencyWizard, { action: 'delete' }),
  'local-lab': LocalLabWizard,
  rewind: RewindWizard,
};
