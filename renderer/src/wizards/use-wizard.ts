// The state every wizard keeps: which step, the errors of the step's fields, a step-wide error, and
// what it is busy doing. `check` takes a validation result (common/wizard-rules.ts) and says whether
// the step may go on; `run` wraps a console API call so its error lands in the wizard's error area.
import { ref } from 'vue';
import type { Errors } from '../../../common/wizard-rules.js';

/** The wizards ServerResourceWizard.vue plays. */
export type ServerResourceAction = 'unextend' | 'delete' | 'in-service' | 'out-of-service';

export function useWizard() {
  const step = ref(0);
  const errors = ref<Errors>({});
  const error = ref('');
  const busy = ref('');

  /** `shown`: the fields on this step; errors of others (an earlier step's) are spelled out in the error area. */
  function check(found: Errors, shown?: readonly string[]): boolean {
    errors.value = found;
    const keys = Object.keys(found);
    const elsewhere = shown ? keys.filter((k) => !shown.includes(k)) : [];
    const here = keys.length - elsewhere.length;
    const parts = [
      here ? `Correct the ${here === 1 ? 'field' : `${here} fields`} marked in red to continue.` : '',
      ...elsewhere.map((k) => found[k]!),
    ].filter(Boolean);
    error.value = parts.join('\n');
    return keys.length === 0;
  }

  async function run<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    busy.value = what;
    error.value = '';
    try {
      return await work();
    } catch (err) {
      error.value = `${what} failed: ${(err as Error).message}`;
      return undefined;
    } finally {
      busy.value = '';
    }
  }

  return { step, errors, error, busy, check, run };
}
