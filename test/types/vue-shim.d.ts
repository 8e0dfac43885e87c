// For tsc over test/ and bench/ (which import renderer modules): a .vue file is a component. The
// renderer's own typecheck (vue-tsc) reads the real components instead.
declare module '*.vue' {
  import type { Component } from 'vue';
  const component: Component;
  export default component;
}
