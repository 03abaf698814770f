import { Ajv, type ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ajvErrorsToDetails, checkHeaders, checkSubscriptionShape, headerValueProblem, isCredentialHeader } from '../../src/services/subscription-input.ts';

/**
 * How a subscription body's shape is checked: every problem with the JSON path where it is, said
 * in words; custom headers that HTTP refuses or that would override Sluice's own; which header
 * names hold credentials (sealed at rest, masked in every answer).
 */

const ok = { url: 'https://hooks.example.com/h', events: ['call.ended'] };
const create = (extra: Record<string, unknown>) => checkSubscriptionShape({ ...ok, ...extra }, 'create');

describe('checkSubscriptionShape', () => {
  it('wants a JSON object, with events on create and at least one field on patch', () => {
    for (const body of [null, undefined, [], 'x', 5, true]) {
      expect(checkSubscriptionShape(body, 'create')).toEqual([{ path: '$', message: 'must be a JSON object' }]);
      expect(checkSubscriptionShape(body, 'patch')).toEqual([{ path: '$', message: 'must be a JSON object' }]);
    }
    expect(checkSubscriptionShape(ok, 'create')).toEqual([]);
    expect(checkSubscriptionShape({ description: 'x' }, 'patch')).toEqual([]);
    expect(checkSubscriptionShape({}, 'create')).toEqual([{ path: '$.events', message: 'is required' }]);
    expect(checkSubscriptionShape({ url: 'https://x.example' }, 'create')).toEqual([{ path: '$.events', message: 'is required' }]);
    expect(checkSubscriptionShape({}, 'patch')).toEqual([{ path: '$', message: 'must hold at least one field' }]);
  });

  it('names each wrong field by its JSON path, in words', () => {
    expect(create({ bogus: 1 })).toEqual([{ path: '$.bogus', message: 'is not a known field' }]);
    expect(create({ events: [] })).toEqual([{ path: '$.events', message: 'must list at least one item' }]);
    expect(create({ events: Array(101).fill('call.ended') })).toEqual([{ path: '$.events', message: 'must list at most 100 items' }]);
    expect(create({ events: ['call.ended', ''] })).toEqual([{ path: '$.events[1]', message: 'must not be empty' }]);
    expect(create({ url: 'x'.repeat(2049) })).toEqual([{ path: '$.url', message: 'must be at most 2048 characters long' }]);
    expect(create({ headers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`x-h${i}`, 'v'])) })).toEqual([{ path: '$.headers', message: 'may hold at most 50 entries' }]);
    expect(create({ timeout: 0 })).toEqual([{ path: '$.timeout', message: 'must be more than 0' }]);
    expect(create({ timeout: 301 })).toEqual([{ path: '$.timeout', message: 'must be 300 or less' }]);
    expect(create({ ordering: { key: 'data.id', on_failure: 'stop' } })).toEqual([{ path: '$.ordering.on_failure', message: 'must be one of "continue", "block"' }]);
    expect(create({ ordering: {} })).toEqual([{ path: '$.ordering.key', message: 'is required' }]);
    expect(create({ name: 'Not A Name' })).toEqual([{ path: '$.name', message: 'is not in the expected form' }]);
    // A schema node with an explanation speaks once for everything inside it.
    const rate = [{ path: '$.rate_limit', message: 'must be null or a number of deliveries per second from 0.001 to 10000' }];
    expect(create({ rate_limit: -1 })).toEqual(rate);
    expect(create({ rate_limit: 'fast' })).toEqual(rate);
  });

  it('reports every problem at once, a repeated one once', () => {
    expect(create({ bogus: 1, other: 2, timeout: 0, events: [''] })).toEqual([
      { path: '$.bogus', message: 'is not a known field' },
      { path: '$.other', message: 'is not a known field' },
      { path: '$.events[0]', message: 'must not be empty' },
      { path: '$.timeout', message: 'must be more than 0' },
    ]);
  });

  it('says about auth only what applies to the type it names', () => {
    const auth = (value: unknown, mode: 'create' | 'patch' = 'create') => checkSubscriptionShape({ ...ok, auth: value }, mode);
    expect(auth(null)).toEqual([]);
    expect(checkSubscriptionShape({ ...ok, auth: null, bogus: 1 }, 'create')).toEqual([{ path: '$.bogus', message: 'is not a known field' }]);
    const notAnObject = [{ path: '$.auth', message: 'must be null or an object {type: "basic" | "bearer" | "header", ...}' }];
    expect(auth('token')).toEqual(notAnObject);
    expect(auth(['bearer'])).toEqual(notAnObject);
    const badType = [{ path: '$.auth.type', message: 'must be one of basic, bearer, header' }];
    for (const value of [{}, { type: 'digest' }, { type: 5 }, { type: 'toString' }]) expect(auth(value)).toEqual(badType);
    expect(auth({ type: 'basic', username: 'a:b', password: 'p' })).toEqual([{ path: '$.auth.username', message: 'must be 1 to 256 characters without a colon' }]);
    expect(auth({ type: 'basic', username: 'a' })).toEqual([{ path: '$.auth.password', message: 'is required' }]);
    expect(auth({ type: 'bearer', token: '', extra: 1 })).toEqual([
      { path: '$.auth.extra', message: 'is not a known field' },
      { path: '$.auth.token', message: 'must not be empty' },
    ]);
    expect(auth({ type: 'header', name: 'X-Key', value: 'v'.repeat(4097) }, 'patch')).toEqual([{ path: '$.auth.value', message: 'must be at most 4096 characters long' }]);
    expect(auth({ type: 'bearer', token: 't' })).toEqual([]);
    // Other fields' problems are kept beside a valid or an invalid auth.
    expect(checkSubscriptionShape({ ...ok, auth: { type: 'bearer', token: 't' }, bogus: 2 }, 'create')).toEqual([{ path: '$.bogus', message: 'is not a known field' }]);
    expect(checkSubscriptionShape({ ...ok, auth: { type: 'digest' }, bogus: 2 }, 'create')).toEqual([{ path: '$.bogus', message: 'is not a known field' }, ...badType]);
  });
});

describe('ajvErrorsToDetails', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const detailsFor = (schema: object, value: unknown, root?: string) => {
    const validate = ajv.compile(schema);
    expect(validate(value)).toBe(false);
    return ajvErrorsToDetails(validate.errors, root, schema);
  };
  const error = (keyword: string, instancePath: string, schemaPath: string, params: Record<string, unknown> = {}, message?: string): ErrorObject => ({ keyword, instancePath, schemaPath, params, message });

  it('says limits in words, singular and plural', () => {
    const at = (schema: object, value: unknown) => detailsFor({ type: 'object', properties: { v: schema } }, { v: value }).map((d) => d.message);
    expect(at({ type: 'string', minLength: 3 }, 'ab')).toEqual(['must be at least 3 characters long']);
    expect(at({ type: 'string', minLength: 1 }, '')).toEqual(['must not be empty']);
    expect(at({ type: 'string', maxLength: 1 }, 'ab')).toEqual(['must be at most 1 character long']);
    expect(at({ type: 'array', minItems: 2 }, [1])).toEqual(['must list at least 2 items']);
    expect(at({ type: 'array', maxItems: 1 }, [1, 2])).toEqual(['must list at most 1 item']);
    expect(at({ type: 'object', minProperties: 2 }, { a: 1 })).toEqual(['must hold at least 2 fields']);
    expect(at({ type: 'object', maxProperties: 1 }, { a: 1, b: 2 })).toEqual(['may hold at most 1 entry']);
    expect(at({ type: 'number', minimum: 5 }, 4)).toEqual(['must be 5 or more']);
    expect(at({ type: 'number', exclusiveMaximum: 1 }, 1)).toEqual(['must be less than 1']);
    expect(at({ enum: ['a', 1] }, 'b')).toEqual(['must be one of "a", 1']);
    expect(at({ const: 'x' }, 'y')).toEqual(['must be "x"']);
    expect(at({ type: 'string', pattern: '^a' }, 'b')).toEqual(['is not in the expected form']);
    // What has no words of its own keeps ajv's.
    expect(at({ type: 'integer', multipleOf: 3 }, 4)).toEqual(['must be multiple of 3']);
    expect(ajvErrorsToDetails([error('format', '/v', '#/properties/v/format', { format: 'email' })])).toEqual([{ path: '$.v', message: 'must be a valid email' }]);
    expect(ajvErrorsToDetails([error('enum', '/v', '#/properties/v/enum')])).toEqual([{ path: '$.v', message: 'must be one of ' }]);
    expect(ajvErrorsToDetails([error('custom', '/v', '#/properties/v/custom')])).toEqual([{ path: '$.v', message: 'is invalid' }]);
  });

  it('puts the path under the root it is given, escaping what a JSON path must', () => {
    expect(detailsFor({ type: 'object', properties: { 'a/b': { type: 'string' } } }, { 'a/b': 5 }, '$.connector_options')).toEqual([{ path: '$.connector_options.a/b', message: 'must be string' }]);
    expect(detailsFor({ type: 'object', required: ['k'] }, {}, '$.auth')).toEqual([{ path: '$.auth.k', message: 'is required' }]);
    expect(ajvErrorsToDetails(null)).toEqual([]);
    expect(ajvErrorsToDetails(undefined)).toEqual([]);
  });

  it('drops the "must be null" of a nullable object when the object branch says what is wrong, and oneOf/anyOf summaries', () => {
    const nullable = { type: 'object', properties: { v: { anyOf: [{ type: 'null' }, { type: 'object', properties: { z: { type: 'string' } } }] } } };
    expect(detailsFor(nullable, { v: { z: 5 } })).toEqual([{ path: '$.v.z', message: 'must be string' }]);
    // Nothing else said about the value: "must be null" is all there is, and stays.
    expect(ajvErrorsToDetails([error('type', '/v', '#/anyOf/0/type', { type: 'null' }, 'must be null'), error('anyOf', '/v', '#/anyOf', {}, 'must match a schema in anyOf')]))
      .toEqual([{ path: '$.v', message: 'must be null' }]);
    // Another value's problem does not silence it.
    expect(ajvErrorsToDetails([error('type', '/v', '#/anyOf/0/type', { type: 'null' }, 'must be null'), error('type', '/vv', '#/x/type', { type: 'string' }, 'must be string')]))
      .toEqual([{ path: '$.v', message: 'must be null' }, { path: '$.vv', message: 'must be string' }]);
    expect(ajvErrorsToDetails([error('type', '/v', '#/x/type', { type: 'string' }, 'must be string'), error('type', '/v', '#/anyOf/0/type', { type: 'null' }, 'must be null')]))
      .toEqual([{ path: '$.v', message: 'must be string' }]);
    expect(ajvErrorsToDetails([error('type', '/v', '#/anyOf/0/type', { type: 'null' }, 'must be null'), error('type', '/v/w', '#/anyOf/1/w/type', { type: 'string' }, 'must be string')]))
      .toEqual([{ path: '$.v.w', message: 'must be string' }]);
    expect(ajvErrorsToDetails([error('oneOf', '/v', '#/oneOf', {}, 'must match exactly one schema in oneOf')])).toEqual([]);
  });

  it('lets a node with an explanation (errorMessage) speak once for everything inside it, where it applies', () => {
    const schema = { type: 'object', properties: { o: { type: 'object', properties: { p: { type: 'object', errorMessage: 'give q and r', required: ['q', 'r'], properties: { q: { type: 'string' } } } } } } };
    expect(detailsFor(schema, { o: { p: { q: 5 } } }, '$.x')).toEqual([{ path: '$.x.o.p', message: 'give q and r' }]);
    // The shortest instance path wins, in whichever order the errors come.
    const deep = error('type', '/o/p/q', '#/properties/o/properties/p/properties/q/type', { type: 'string' });
    const shallow = error('required', '/o/p', '#/properties/o/properties/p/required', { missingProperty: 'r' });
    expect(ajvErrorsToDetails([deep, shallow], '$', schema)).toEqual([{ path: '$.o.p', message: 'give q and r' }]);
    expect(ajvErrorsToDetails([shallow, deep], '$', schema)).toEqual([{ path: '$.o.p', message: 'give q and r' }]);
    // The outermost explanation wins over an inner one; `~1` in a schema path is a `/`.
    const nested = { properties: { 'a/b': { errorMessage: 'outer', properties: { c: { errorMessage: 'inner' } } } } };
    expect(ajvErrorsToDetails([error('type', '/a~1b/c', '#/properties/a~1b/properties/c/type')], '$', nested)).toEqual([{ path: '$.a/b.c', message: 'outer' }]);
    expect(ajvErrorsToDetails([error('type', '/t', '#/properties/t~0x/type')], '$', { properties: { 't~x': { errorMessage: 'tilde' } } })).toEqual([{ path: '$.t', message: 'tilde' }]);
    // Without an explanation on the way, each error speaks for itself.
    expect(ajvErrorsToDetails([error('required', '', '#/required', { missingProperty: 'q' })], '$', { properties: { q: { errorMessage: 'unused' } } })).toEqual([{ path: '$.q', message: 'is required' }]);
    expect(ajvErrorsToDetails([error('type', '/z', '#/properties/z/items/type', { type: 'string' }, 'must be string')], '$', { properties: { z: 'not an object' } })).toEqual([{ path: '$.z', message: 'must be string' }]);
  });
});

describe('custom headers', () => {
  it('accepts HTTP field values, and says what is wrong with any other', () => {
    for (const value of ['ok', 'a b', 'a\tb', '', 'x'.repeat(100), '!~']) expect(headerValueProblem(value), JSON.stringify(value)).toBeUndefined();
    for (const value of ['x\r\ny', 'a\nb', 'nul\0']) expect(headerValueProblem(value)).toBe('must not contain CR, LF or NUL');
    for (const value of [' lead', 'trail ', '\t', 'tab\t']) expect(headerValueProblem(value)).toBe('must not start or end with a space or tab');
    expect(headerValueProblem('café')).toBe('may hold only visible ASCII characters, spaces and tabs (RFC 9110 field-value); "é" is not allowed');
    expect(headerValueProblem('a😀')).toBe('may hold only visible ASCII characters, spaces and tabs (RFC 9110 field-value); "😀" is not allowed');
    expect(headerValueProblem('a\x7fb')).toBe('may hold only visible ASCII characters, spaces and tabs (RFC 9110 field-value); "\x7f" is not allowed');
    // A space inside a value is fine: the character it is refused for is named, not the space.
    expect(headerValueProblem('café au lait')).toBe('may hold only visible ASCII characters, spaces and tabs (RFC 9110 field-value); "é" is not allowed');
    expect(headerValueProblem('au\tcafé')).toBe('may hold only visible ASCII characters, spaces and tabs (RFC 9110 field-value); "é" is not allowed');
  });

  it('refuses names HTTP refuses, the ones Sluice sets and the ones that would forge its signature, each at its path', () => {
    expect(checkHeaders({ 'X-Ok': 'v', 'Bad Name': 'v', Host: 'h', 'content-type': 'x', 'Webhook-Id': 'x', 'X-Webhook-Signature': 's', 'X-Bad': ' v', 'Proxy-Authorization': 'p' })).toEqual([
      { path: '$.headers.Bad Name', message: 'is not a valid header name' },
      { path: '$.headers.Host', message: 'Host is set by Sluice and cannot be overridden' },
      { path: '$.headers.content-type', message: 'content-type is set by Sluice and cannot be overridden' },
      { path: '$.headers.Webhook-Id', message: 'Webhook-Id would forge Sluice\'s signature headers' },
      { path: '$.headers.X-Webhook-Signature', message: 'X-Webhook-Signature would forge Sluice\'s signature headers' },
      { path: '$.headers.X-Bad', message: 'must not start or end with a space or tab' },
      { path: '$.headers.Proxy-Authorization', message: 'Proxy-Authorization is set by Sluice and cannot be overridden' },
    ]);
    for (const name of ['Content-Length', 'Transfer-Encoding', 'Connection', 'Keep-Alive', 'Upgrade', 'TE', 'Trailer', 'Expect']) {
      expect(checkHeaders({ [name]: 'x' })).toEqual([{ path: `$.headers.${name}`, message: `${name} is set by Sluice and cannot be overridden` }]);
    }
    // A bad name and a bad value are both said; only the first problem of a name.
    expect(checkHeaders({ 'Host': 'a\nb', 'a:b': 'v' }, '$.auth.name')).toEqual([
      { path: '$.auth.name.Host', message: 'Host is set by Sluice and cannot be overridden' },
      { path: '$.auth.name.Host', message: 'must not contain CR, LF or NUL' },
      { path: '$.auth.name.a:b', message: 'is not a valid header name' },
    ]);
    expect(checkHeaders({ 'X-Webhooks': 'v', 'My-Webhook-Id': 'v', "x-!#$%&'*+.^_`|~09": 'v' })).toEqual([]);
    expect(checkHeaders({})).toEqual([]);
  });

  it('knows the credential-like names (sealed at rest, masked in answers) in any case, and only those', () => {
    const credentials = ['Authorization', 'cookie', 'X-API-Key', 'api-key', 'APIKEY', 'x-auth', 'x-access-key', 'X-Github-Token', 'my-secret', 'db-password', 'x-service-api-key', 'svc-auth-key', 'svc-access-key', 'x-auth-token'];
    for (const name of credentials) expect(isCredentialHeader(name), name).toBe(true);
    for (const name of ['x-tokens', 'authorization2', 'x-authorization', 'token', 'secret', 'password', 'x-request-id', 'cookies', 'x-secret-name']) expect(isCredentialHeader(name), name).toBe(false);
  });
});
