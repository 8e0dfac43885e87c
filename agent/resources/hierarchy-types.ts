// The manual's three DataKeeper resource types: fields, defaults and checks live in common/ so the
// console's wizard checks each step with the very rules the agent applies before creating anything.
export * from '../../common/hierarchy-rules.js';
