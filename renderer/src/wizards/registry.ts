// Wizard name → component. Each wizard is a component with props { context: WizardContext } that
// emits 'close' when it is finished or cancelled. WizardHost renders the open one. The components are
// loaded when first opened (defineAsyncComponent): the registry itself stays importable from plain
// Node (the stores' unit tests) and the main bundle small.
import { defineAsyncComponent, defineComponent, h, type Component, type PropType } from 'vue';
import type { WizardContext, WizardName } from '../stores/wizards.js';
import type { ServerResourceAction } from './use-wizard.js';

const AddServerWizard = defineAsyncComponent(() => import('./AddServerWizard.vue'));
const CreateHierarchyWizard = defineAsyncComponent(() => import('./CreateHierarchyWizard.vue'));
const DependencyWizard = defineAsyncComponent(() => import('./DependencyWizard.vue'));
const ExtendWizard = defineAsyncComponent(() => import('./ExtendWizard.vue'));
const LocalLabWizard = defineAsyncComponent(() => import('./LocalLabWizard.vue'));
const ServerResourceWizard = defineAsyncComponent(() => import('./ServerResourceWizard.vue'));
const RewindWizard = defineAsyncComponent(() => import('./rewind/RewindWizard.vue'));

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
