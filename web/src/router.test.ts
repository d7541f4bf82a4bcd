import { describe, expect, it } from 'vitest';
import { href, parseHash } from './router';

describe('parseHash', () => {
  it('maps the empty hash and "#/" to the dashboard', () => {
    expect(parseHash('').name).toBe('dashboard');
    expect(parseHash('#').name).toBe('dashboard');
    expect(parseHash('#/').name).toBe('dashboard');
  });

  it('finds the pages', () => {
    for (const [hash, name] of [
      ['#/setup', 'setup'],
      ['#/login', 'login'],
      ['#/shares', 'shares'],
      ['#/users', 'users'],
      ['#/accounts', 'accounts'],
      ['#/bandwidth', 'bandwidth'],
      ['#/cache', 'cache'],
      ['#/compute', 'compute'],
      ['#/compute/new', 'pipelineNew'],
      ['#/logs', 'logs'],
      ['#/alerts', 'alerts'],
      ['#/diagnostics', 'diagnostics'],
      ['#/support', 'support'],
      ['#/device', 'device'],
    ]) {
      expect(parseHash(hash!).name, hash).toBe(name);
    }
  });

  it('prefers the literal route to the parameter', () => {
    expect(parseHash('#/shares/new')).toEqual({ name: 'shareNew', params: {}, path: '/shares/new' });
  });

  it('decodes parameters', () => {
    expect(parseHash('#/shares/photos')).toEqual({ name: 'shareEdit', params: { name: 'photos' }, path: '/shares/photos' });
    expect(parseHash('#/shares/a%20b').params).toEqual({ name: 'a b' });
    expect(parseHash('#/accounts/usb').name).toBe('accountEdit');
    expect(parseHash('#/compute/pipelines/new')).toEqual({ name: 'pipeline', params: { name: 'new' }, path: '/compute/pipelines/new' });
    expect(parseHash('#/compute/pipelines/p-1/edit').name).toBe('pipelineEdit');
    expect(href('pipelineEdit', { name: 'p_1' })).toBe('#/compute/pipelines/p_1/edit');
  });

  it('ignores a trailing slash and a query', () => {
    expect(parseHash('#/shares/').name).toBe('shares');
    expect(parseHash('#/logs?x=1').name).toBe('logs');
  });

  it('answers notFound for the unknown and the undecodable', () => {
    expect(parseHash('#/nope').name).toBe('notFound');
    expect(parseHash('#/shares/a/b').name).toBe('notFound');
    expect(parseHash('#/shares/%E0%A4%A').name).toBe('notFound');
  });
});

describe('href', () => {
  it('builds hashes that parse back', () => {
    expect(href('dashboard')).toBe('#/');
    expect(href('shares')).toBe('#/shares');
    expect(href('shareEdit', { name: 'a b/c' })).toBe('#/shares/a%20b%2Fc');
    expect(parseHash(href('shareEdit', { name: 'a b/c' })).params['name']).toBe('a b/c');
  });
});
