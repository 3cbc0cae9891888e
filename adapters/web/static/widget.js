/*! omnigate chat widget. One script tag, no dependencies:
 *  <script src="https://support.example.com/widget.js" data-site="demo" async></script>
 * Protocol: docs/web-protocol.md. Everything the server sends is shown as text
 * (textContent); links become <a> only for http(s) URLs. No inline script or
 * style, no eval: it runs under a strict Content-Security-Policy. */
(function () {
  'use strict';
  var script = document.currentScript || (function () {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    return all[all.length - 1];
  })();
  if (!script || window.Omnigate) return;

  var ds = script.dataset;
  var src = new URL(script.src, location.href);
  var channel = ds.channel || 'web';
  var prefix = src.pathname.replace(/\/widget\.js$/, '').replace(/\/channels\/[a-z0-9_]+$/, '');
  var api = src.origin + prefix + '/channels/' + channel;
  var site = ds.site || 'demo';
  var pageLang = ds.lang || document.documentElement.lang || navigator.language || 'en';
  var lang = (pageLang + '').toLowerCase().indexOf('zh') === 0 ? 'zh' : 'en';
  var TEXTS = {
    en: {
      open: 'Open chat', close: 'Close chat', title: 'Chat with us', online: 'We are online',
      away: 'No agent is available right now', closed: 'We are closed now', nobody: 'Nobody can answer this chat yet',
      connecting: 'Connecting…', agent: 'Agent', you: 'You', team: 'Support team',
      input: 'Message', placeholder: 'Write a message…', send: 'Send', attach: 'Attach a file',
      typing: 'An agent is typing…', earlier: 'Show earlier messages', messages: 'Messages',
      offlineIntro: 'Leave your email and message, and we will get back to you.',
      nobodyIntro: 'No agent is set up to answer here yet. Leave your email and message: they are kept for when someone is.',
      name: 'Your name', email: 'Your email', message: 'Your message', leave: 'Send message',
      prechatIntro: 'Before we start, tell us who you are.', start: 'Start chat', optional: 'optional',
      emailNeeded: 'Please enter a valid email address.', fieldNeeded: 'Please fill in the required fields.',
      thanks: 'Thanks! We got your message and will reply by email.', thanksChat: 'Thanks! We got your message and will reply here.',
      sending: 'Sending…', failed: 'Not sent', tooFast: 'You are sending messages too fast. Retrying…',
      tooLarge: 'That file is too large.', badType: 'That type of file cannot be sent.',
      uploadFailed: 'The file could not be uploaded.', refused: 'The message could not be sent.',
      unavailable: 'Chat is not available on this page.', lost: 'Connection lost. Reconnecting…',
      file: 'File', read: 'Read', auto: 'Automatic reply',
      unread: function (n) { return n === 1 ? '1 unread message' : n + ' unread messages'; },
      wait: function (s) {
        if (s < 90) return 'Typically replies in under a minute';
        if (s < 5400) return 'Typically replies in ' + Math.round(s / 60) + ' minutes';
        return 'Typically replies in ' + Math.round(s / 3600) + ' hours';
      },
      back: function (w) { return 'Back ' + w; }
    },
    zh: {
      open: '打开聊天', close: '关闭聊天', title: '在线客服', online: '客服在线',
      away: '暂无客服在线', closed: '现在是非工作时间', nobody: '目前没有客服可以回复此聊天',
      connecting: '正在连接…', agent: '客服', you: '我', team: '客服团队',
      input: '消息', placeholder: '输入消息…', send: '发送', attach: '添加附件',
      typing: '客服正在输入…', earlier: '查看更早的消息', messages: '消息',
      offlineIntro: '请留下您的邮箱和留言，我们会尽快回复您。',
      nobodyIntro: '目前还没有客服值守。请留下您的邮箱和留言，有客服时会回复您。',
      name: '您的姓名', email: '您的邮箱', message: '您的留言', leave: '提交留言',
      prechatIntro: '开始之前，请告诉我们您是谁。', start: '开始聊天', optional: '选填',
      emailNeeded: '请输入有效的邮箱地址。', fieldNeeded: '请填写必填项。',
      thanks: '谢谢！我们已收到您的留言，会通过邮件回复您。', thanksChat: '谢谢！我们已收到您的留言，会在这里回复您。',
      sending: '发送中…', failed: '未发送', tooFast: '发送太频繁，正在重试…',
      tooLarge: '文件太大。', badType: '不支持此类文件。',
      uploadFailed: '文件上传失败。', refused: '消息无法发送。',
      unavailable: '此页面无法使用聊天。', lost: '连接已断开，正在重新连接…',
      file: '文件', read: '已读', auto: '自动回复',
      unread: function (n) { return n + ' 条未读消息'; },
      wait: function (s) {
        if (s < 90) return '通常在1分钟内回复';
        if (s < 5400) return '通常在' + Math.round(s / 60) + '分钟内回复';
        return '通常在' + Math.round(s / 3600) + '小时内回复';
      },
      back: function (w) { return w + '恢复服务'; }
    }
  };
  var T = TEXTS[lang];

  function parseJSON(s) { try { return s ? JSON.parse(s) : null; } catch (e) { return null; } }
  function store(k, v) {
    try { if (v === undefined) return localStorage.getItem(k); if (v === null) localStorage.removeItem(k); else localStorage.setItem(k, v); } catch (e) {}
    return null;
  }

  // Only anonymous tokens are kept across page loads: a signed-in user's token
  // stays in memory, so the next person on a shared computer gets nothing.
  var identity = window.OmnigateIdentity || parseJSON(ds.identity);
  var tokenKey = 'omnigate:' + channel + ':' + site;
  var token = identity ? null : store(tokenKey);
  var profile = identity ? null : parseJSON(store(tokenKey + ':profile'));

  var state = {
    open: false, connected: false, lastSeq: 0, readUpTo: 0, agentSeqs: [],
    seen: {}, pending: {}, queue: [], more: false, oldest: 0, fatal: false, retry: 0,
    wsFailures: 0, mode: window.WebSocket ? 'ws' : 'http', ws: null, es: null, lastTyping: 0,
    limits: { max_upload_bytes: 10485760, upload_types: [] }, left: false,
    avail: null, cfg: { position: 'right', offline_form: 'email' }
  };

  // DOM, built with createElement and textContent only.
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') el.textContent = attrs[k];
      else if (attrs[k] !== false && attrs[k] != null) el.setAttribute(k, attrs[k] === true ? '' : attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }
  function icon(d) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
    return svg;
  }
  function safeURL(href, pathOK) {
    var u;
    if (!href) return null;
    try { u = new URL(href, src.origin); } catch (e) { return null; }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (!pathOK && !/^https?:\/\//i.test(href)) return null;
    return u.href;
  }

  var CSS = ':host{all:initial}*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif}' +
    '.launcher{position:fixed;right:20px;bottom:20px;min-width:56px;height:56px;padding:0 16px;border-radius:28px;border:0;background:var(--c);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center;gap:8px;font-size:15px;font-weight:600}' +
    '.launcher svg{width:28px;height:28px;fill:currentColor;flex:none}.launcher .dot{position:absolute;left:6px;bottom:6px;width:12px;height:12px;border-radius:50%;border:2px solid #fff;background:#9ca3af}.launcher .dot.on{background:#22c55e}' +
    '.badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#dc2626;color:#fff;font-size:12px;font-weight:700;line-height:22px;text-align:center}' +
    '.panel{position:fixed;right:20px;bottom:88px;width:370px;max-width:calc(100vw - 40px);height:580px;max-height:calc(100vh - 110px);background:#fff;color:#111827;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;z-index:2147483000;font-size:14px}' +
    '.left .launcher{right:auto;left:20px}.left .panel{right:auto;left:20px}' +
    '[hidden]{display:none!important}' +
    'header{background:var(--c);color:#fff;padding:14px 16px;display:flex;align-items:center;gap:10px}' +
    'header .logo{width:36px;height:36px;border-radius:8px;background:#fff;object-fit:contain;flex:none}' +
    'header div{flex:1;min-width:0}h2{margin:0;font-size:16px;font-weight:600}.status{margin:2px 0 0;font-size:12px;opacity:.92}.status b{display:inline-block;width:8px;height:8px;border-radius:50%;background:#d1d5db;margin-right:6px}.status b.on{background:#4ade80}' +
    'button{font:inherit}.icon-btn{background:none;border:0;color:inherit;cursor:pointer;width:36px;height:36px;border-radius:8px;display:flex;align-items:center;justify-content:center;padding:0}' +
    '.icon-btn svg{width:20px;height:20px;fill:currentColor}' +
    ':focus-visible{outline:3px solid #f59e0b;outline-offset:2px}' +
    '.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}' +
    '.row{display:flex;gap:8px;align-items:flex-end;max-width:88%}.row.agent{align-self:flex-start}.row.me{align-self:flex-end}' +
    '.av{width:30px;height:30px;border-radius:50%;flex:none;object-fit:cover;background:var(--c);color:#fff;font-size:13px;font-weight:700;display:flex;align-items:center;justify-content:center}' +
    '.msg{padding:8px 12px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.45;min-width:0}' +
    '.agent .msg{background:#fff;border:1px solid #e5e7eb}.msg.auto{background:#eef2ff;border-color:#c7d2fe}' +
    '.me .msg{background:var(--c);color:#fff}.me .msg a{color:#fff}' +
    '.pending .msg{opacity:.65}.failed .msg{background:#fee2e2;color:#991b1b}' +
    '.who{display:block;font-size:11px;font-weight:600;color:#6b7280;margin-bottom:2px}' +
    '.meta{display:block;font-size:10px;opacity:.7;margin-top:2px;text-align:right}' +
    '.att{display:block;margin-top:4px}.att img{max-width:100%;max-height:180px;border-radius:6px;display:block}' +
    '.greet{align-self:flex-start;max-width:88%;background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:10px 12px;line-height:1.45;white-space:pre-wrap}' +
    '.earlier{align-self:center;background:none;border:1px solid #d1d5db;border-radius:14px;padding:4px 12px;cursor:pointer;color:#374151}' +
    '.typing{padding:0 14px 4px;font-size:12px;color:#6b7280;background:#f9fafb}' +
    '.card{padding:12px 14px;border-top:1px solid #e5e7eb;display:flex;flex-direction:column;gap:8px;overflow-y:auto;max-height:70%}.card p{margin:0;color:#374151;line-height:1.45}' +
    '.card label{display:flex;flex-direction:column;gap:3px;font-size:12px;color:#4b5563;font-weight:600}.card label i{font-weight:400;font-style:normal;color:#9ca3af}' +
    '.card input,.card textarea{width:100%;padding:8px 10px;border:1px solid #d1d5db;border-radius:8px;font:inherit;font-weight:400;color:#111827}.card textarea{resize:vertical;min-height:72px}' +
    '.primary{background:var(--c);color:#fff;border:0;border-radius:8px;padding:10px;font-weight:600;cursor:pointer}' +
    'form.composer{display:flex;align-items:flex-end;gap:6px;padding:10px;border-top:1px solid #e5e7eb}' +
    '.composer textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:8px 10px;font:inherit;max-height:120px;min-height:38px}' +
    'form .icon-btn{color:#4b5563}form .send{color:var(--c)}' +
    '.notice{font-size:12px;color:#b91c1c;padding:0 14px}.notice:empty{display:none}.notice:not(:empty){padding:6px 14px}.notice.ok{color:#047857}' +
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
    '@media (max-width:480px){.panel,.left .panel{right:0;left:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}}' +
    '@media (prefers-reduced-motion:no-preference){.panel{transition:opacity .15s}}';

  var host = h('div', { id: 'omnigate-widget' });
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  // A constructed style sheet is no inline style: a strict CSP allows it.
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
    try { var sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); root.adoptedStyleSheets = [sheet]; } catch (e) { root.appendChild(h('style', { text: CSS })); }
  } else root.appendChild(h('style', { text: CSS }));
  var frame = h('div', { 'class': 'frame' });
  root.appendChild(frame);

  var CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z';
  var badge = h('span', { 'class': 'badge', 'aria-hidden': 'true', hidden: true });
  var dot = h('span', { 'class': 'dot', 'aria-hidden': 'true' });
  var launcherText = h('span', { 'class': 'ltext', hidden: true });
  var launcher = h('button', { type: 'button', 'class': 'launcher', 'aria-label': T.open, 'aria-expanded': 'false', 'aria-controls': 'omnigate-panel', 'aria-haspopup': 'dialog' }, [icon(CHAT), launcherText, dot, badge]);
  var logo = h('img', { 'class': 'logo', alt: '', hidden: true });
  var title = h('h2', { id: 'omnigate-title', text: T.title });
  var statusDot = h('b', { 'aria-hidden': 'true' });
  var statusText = h('span', { text: T.connecting });
  var status = h('p', { 'class': 'status' }, [statusDot, statusText]);
  var closeBtn = h('button', { type: 'button', 'class': 'icon-btn close', 'aria-label': T.close }, [icon('M19 6.41L17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z')]);
  var log = h('div', { 'class': 'log', role: 'log', 'aria-live': 'polite', 'aria-label': T.messages, tabindex: '0' });
  var greet = h('div', { 'class': 'greet', hidden: true });
  var earlier = h('button', { type: 'button', 'class': 'earlier', text: T.earlier, hidden: true });
  log.appendChild(earlier);
  log.appendChild(greet);
  var typing = h('div', { 'class': 'typing', 'aria-live': 'polite' });

  function field(name, label, type, required, auto) {
    var inp = h(type === 'textarea' ? 'textarea' : 'input', { name: name, type: type === 'textarea' ? null : type, required: !!required, autocomplete: auto || null, maxlength: type === 'textarea' ? null : '200' });
    var lab = h('label', {}, [h('span', {}, [document.createTextNode(label), required ? null : h('i', { text: ' (' + T.optional + ')' })]), inp]);
    return { label: lab, input: inp };
  }
  // The pre-chat form: name, email and the fields the site asks for.
  var pre = h('form', { 'class': 'card prechat', hidden: true, novalidate: true });
  var preName = field('name', T.name, 'text', true, 'name');
  var preEmail = field('email', T.email, 'email', true, 'email');
  var preFields = [];
  // The offline form: a message and the email it is answered at.
  var off = h('form', { 'class': 'card offline', hidden: true, novalidate: true });
  var offIntro = h('p', { text: T.offlineIntro });
  var offName = field('name', T.name, 'text', false, 'name');
  var offEmail = field('email', T.email, 'email', true, 'email');
  var offText = field('message', T.message, 'textarea', true);
  off.appendChild(offIntro);
  [offName, offEmail, offText].forEach(function (f) { off.appendChild(f.label); });
  off.appendChild(h('button', { type: 'submit', 'class': 'primary', text: T.leave }));

  var input = h('textarea', { id: 'omnigate-input', rows: '1', placeholder: T.placeholder, 'aria-label': T.input });
  var file = h('input', { type: 'file', hidden: true, tabindex: '-1', 'aria-hidden': 'true' });
  var attachBtn = h('button', { type: 'button', 'class': 'icon-btn attach', 'aria-label': T.attach }, [icon('M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z')]);
  var sendBtn = h('button', { type: 'submit', 'class': 'icon-btn send', 'aria-label': T.send }, [icon('M2.01 21L23 12 2.01 3 2 10l15 2-15 2z')]);
  var form = h('form', { 'class': 'composer' }, [input, file, attachBtn, sendBtn]);
  var notice = h('div', { 'class': 'notice', role: 'status', 'aria-live': 'polite' });
  var panel = h('section', { id: 'omnigate-panel', 'class': 'panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'omnigate-title', hidden: true },
    [h('header', {}, [logo, h('div', {}, [title, status]), closeBtn]), log, typing, pre, off, form, notice]);
  frame.appendChild(launcher);
  frame.appendChild(panel);

  function say(text, ok) { notice.textContent = text || ''; notice.className = 'notice' + (ok ? ' ok' : ''); }

  // Theme and texts: the site's config, then the script tag's data- attributes.
  function applyConfig(c) {
    c = c || {};
    state.cfg = c;
    var color = ds.color || c.color;
    host.style.setProperty('--c', /^#[0-9a-fA-F]{3,8}$/.test(color || '') ? color : '#2563eb');
    frame.className = 'frame ' + ((ds.position || c.position) === 'left' ? 'left' : 'right');
    var lt = ds.launcherText || c.launcher_text;
    launcherText.textContent = lt || '';
    launcherText.hidden = !lt;
    var lg = safeURL(ds.logo || c.logo_url || '', true);
    if (lg) { logo.src = lg; logo.hidden = false; }
    title.textContent = ds.title || c.title || T.title;
    var g = ds.greeting || (c.greeting && (c.greeting[lang] || c.greeting[pageLang] || c.greeting.en));
    greet.textContent = g || '';
    greet.hidden = !g;
    if (c.prechat && !preFields.length) {
      pre.appendChild(h('p', { text: T.prechatIntro }));
      pre.appendChild(preName.label);
      pre.appendChild(preEmail.label);
      (c.prechat.fields || []).forEach(function (f) {
        var fd = field(f.name, f.label || f.name, 'text', f.required);
        fd.name = f.name;
        preFields.push(fd);
        pre.appendChild(fd.label);
      });
      pre.appendChild(h('button', { type: 'submit', 'class': 'primary', text: T.start }));
    }
    if (c.availability) state.avail = c.availability;
    showStatus();
  }
  function loadConfig() {
    return fetch(api + '/widget/config?site=' + encodeURIComponent(site)).then(function (r) { return r.ok ? r.json() : null; })
      .then(applyConfig, function () { applyConfig(null); });
  }

  // Messages.
  var URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  function safeLink(href, label) {
    var u = safeURL(href);
    if (!u) return null;
    var a = h('a', { href: u, target: '_blank', rel: 'noopener noreferrer' });
    a.textContent = label || href;
    return a;
  }
  function linkify(parent, text) {
    var i = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var url = m[0].replace(/[.,;:!?)\]}'"]+$/, '');
      if (m.index > i) parent.appendChild(document.createTextNode(text.slice(i, m.index)));
      parent.appendChild(safeLink(url) || document.createTextNode(url));
      i = m.index + url.length;
      URL_RE.lastIndex = Math.max(i, m.index + 1);
    }
    if (i < text.length) parent.appendChild(document.createTextNode(text.slice(i)));
  }
  function timeText(at) {
    var d = new Date(at);
    return isNaN(d) ? '' : d.toLocaleTimeString(lang === 'zh' ? 'zh-CN' : undefined, { hour: '2-digit', minute: '2-digit' });
  }
  function avatar(m) {
    var name = m.auto ? T.team : (m.agent || T.agent);
    var u = !m.auto && safeURL(m.avatar || '');
    var el = u ? h('img', { 'class': 'av', src: u, alt: '' }) : h('span', { 'class': 'av', 'aria-hidden': 'true', text: name.charAt(0).toUpperCase() });
    if (u) el.addEventListener('error', function () {
      var s = h('span', { 'class': 'av', 'aria-hidden': 'true', text: name.charAt(0).toUpperCase() });
      if (el.parentNode) el.parentNode.replaceChild(s, el);
    });
    return el;
  }
  function bubble(m, cls) {
    var agent = m.from === 'agent';
    var row = h('div', { 'class': 'row ' + (agent ? 'agent' : 'me') + (cls ? ' ' + cls : '') });
    var el = h('div', { 'class': 'msg' + (m.auto ? ' auto' : '') });
    var who = agent ? (m.auto ? T.auto : (m.agent || T.agent)) : T.you;
    el.appendChild(h('span', { 'class': agent ? 'who' : 'sr', text: who }));
    var body = h('span', { 'class': 'body' });
    linkify(body, m.text || '');
    el.appendChild(body);
    (m.attachments || []).forEach(function (a) {
      var link = safeLink(a.url, a.name || T.file);
      if (!link) return;
      if (/^image\/(png|jpeg|gif|webp)$/.test(a.content_type || '')) {
        link.textContent = '';
        link.appendChild(h('img', { src: link.href, alt: a.name || T.file, loading: 'lazy' }));
      }
      link.className = 'att';
      el.appendChild(link);
    });
    if (m.at) el.appendChild(h('span', { 'class': 'meta', text: timeText(m.at) }));
    if (agent) row.appendChild(avatar(m));
    row.appendChild(el);
    row.msg = el;
    return row;
  }
  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function render(m) {
    if (!m || !m.seq || state.seen[m.seq]) return;
    var stick = nearBottom();
    if (m.client_id && state.pending[m.client_id]) {
      var p = state.pending[m.client_id];
      if (p.el.parentNode) p.el.parentNode.removeChild(p.el);
      delete state.pending[m.client_id];
      state.queue = state.queue.filter(function (f) { return f.client_id !== m.client_id; });
    }
    var el = bubble(m);
    el.setAttribute('data-seq', m.seq);
    var after = null, kids = log.children;
    for (var i = 0; i < kids.length; i++) {
      var s = +kids[i].getAttribute('data-seq');
      if ((s && s > m.seq) || (!s && kids[i].classList.contains('pending'))) { after = kids[i]; break; }
    }
    log.insertBefore(el, after);
    state.seen[m.seq] = el;
    if (m.seq > state.lastSeq) state.lastSeq = m.seq;
    if (!state.oldest || m.seq < state.oldest) state.oldest = m.seq;
    if (m.from === 'agent') { state.agentSeqs.push(m.seq); typing.textContent = ''; }
    if (stick || m.from !== 'agent') log.scrollTop = log.scrollHeight;
    markRead();
    updateBadge();
    showForms();
  }
  function updateBadge() {
    var n = 0;
    state.agentSeqs.forEach(function (s) { if (s > state.readUpTo) n++; });
    badge.hidden = !n || state.open;
    badge.textContent = n > 99 ? '99+' : String(n);
    launcher.setAttribute('aria-label', n ? T.open + ', ' + T.unread(n) : T.open);
  }
  function markRead() {
    if (!state.open || document.visibilityState === 'hidden' || state.lastSeq <= state.readUpTo || !state.connected) return;
    state.readUpTo = state.lastSeq;
    send({ type: 'read', up_to: state.lastSeq });
    updateBadge();
  }
  function online() { return !!(state.avail && state.avail.online); }
  function when(t) {
    var d = new Date(t);
    if (isNaN(d)) return '';
    return d.toLocaleString(lang === 'zh' ? 'zh-CN' : undefined, { weekday: 'long', hour: '2-digit', minute: '2-digit' });
  }
  // The header says who can answer, and how soon.
  function showStatus() {
    var a = state.avail, text;
    if (!a) text = T.connecting;
    else if (a.online) text = T.online + (a.expected_wait_s ? ' · ' + T.wait(a.expected_wait_s) : '');
    else if (a.reason === 'closed') text = T.closed + (a.next_open ? ' · ' + T.back(when(a.next_open)) : '');
    else if (a.reason === 'no_agents' || a.reason === 'unknown') text = T.nobody;
    else text = T.away;
    statusText.textContent = text;
    statusDot.className = online() ? 'on' : '';
    dot.className = 'dot' + (online() ? ' on' : '');
    offIntro.textContent = a && (a.reason === 'no_agents' || a.reason === 'unknown') ? T.nobodyIntro : T.offlineIntro;
    showForms();
  }
  // Which form the panel shows: the offline form while nobody can answer
  // and the visitor has no conversation; the pre-chat form before the first
  // message when the site asks for one; else the composer.
  function showForms() {
    var talking = state.lastSeq > 0 || Object.keys(state.pending).length > 0;
    var offline = !!state.avail && !online() && !talking && !state.left;
    var prechat = !offline && !!state.cfg.prechat && !profile && !identity && !talking;
    off.hidden = !offline;
    pre.hidden = !prechat;
    form.hidden = offline || prechat;
  }

  // Connection: a WebSocket, or POST + Server-Sent Events where WebSockets fail.
  function hello() {
    var f = { type: 'hello', site: site, lang: pageLang, page: location.href };
    if (identity) f.identity = identity; else if (token) f.visitor_token = token;
    if (state.lastSeq) f.resume_after = state.lastSeq;
    return f;
  }
  function connect() {
    if (state.fatal) return;
    if (state.mode === 'http') return connectHTTP();
    var ws, opened = false;
    try { ws = new WebSocket(api.replace(/^http/, 'ws') + '/ws'); } catch (e) { state.mode = 'http'; return connectHTTP(); }
    state.ws = ws;
    ws.onopen = function () { opened = true; state.wsFailures = 0; ws.send(JSON.stringify(hello())); };
    ws.onmessage = function (ev) { var f = parseJSON(ev.data); if (f) onFrame(f); };
    ws.onclose = function () {
      if (state.ws !== ws) return;
      state.ws = null;
      lost();
      if (!opened && ++state.wsFailures >= 3) state.mode = 'http';
      reconnect();
    };
  }
  function lost() {
    if (state.connected) say(T.lost);
    state.connected = false;
  }
  function reconnect() {
    if (state.fatal || state.timer) return;
    var d = Math.min(30000, 1000 * Math.pow(2, state.retry++)) * (0.5 + Math.random() / 2);
    state.timer = setTimeout(function () { state.timer = null; connect(); }, state.retry === 1 ? 200 : d);
  }
  function request(method, path, body) {
    var headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (body && !(body instanceof FormData)) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(body); }
    return fetch(api + path, { method: method, headers: headers, body: body }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { j = j && j.type === 'error' ? j : { type: 'error', code: 'unavailable' }; j.status = r.status; throw j; }
        return j;
      });
    });
  }
  function connectHTTP() {
    request('POST', '/hello', hello()).then(function (w) {
      onFrame(w);
      var es = new EventSource(api + '/events?token=' + encodeURIComponent(state.token) + '&resume_after=' + state.lastSeq);
      state.es = es;
      es.onmessage = function (ev) { var f = parseJSON(ev.data); if (f) onFrame(f); };
      es.onerror = function () {
        if (es.readyState !== 2 || state.es !== es) return;
        state.es = null;
        lost();
        reconnect();
      };
    }, function (e) { if (e && e.code) onFrame(e); lost(); reconnect(); });
  }
  function send(f) {
    if (!state.connected) return false;
    if (state.mode === 'ws') {
      if (!state.ws || state.ws.readyState !== 1) return false;
      state.ws.send(JSON.stringify(f));
      return true;
    }
    var done = function (r) { if (r) onFrame(r); };
    var fail = function (e) { if (e && e.code) { e.ref = f.client_id; onFrame(e); } };
    if (f.type === 'message') request('POST', '/messages', f).then(done, fail);
    else if (f.type === 'read') request('POST', '/read', f).then(null, fail);
    else if (f.type === 'history') request('GET', '/history?' + (f.after ? 'after=' + f.after : 'before=' + (f.before || 0)) + '&limit=' + f.limit).then(done, fail);
    return true;
  }

  function onFrame(f) {
    switch (f.type) {
      case 'welcome':
        state.connected = true;
        state.retry = 0;
        state.token = f.visitor_token;
        if (!identity) { token = f.visitor_token; store(tokenKey, token); }
        if (f.availability) state.avail = f.availability;
        if (f.limits) state.limits = f.limits;
        if (f.limits && f.limits.upload_types) file.setAttribute('accept', f.limits.upload_types.join(','));
        state.readUpTo = Math.max(state.readUpTo, f.read_up_to || 0);
        if (!state.lastSeq) { state.more = !!f.more; earlier.hidden = !state.more; }
        (f.history || []).forEach(render);
        if (state.lastSeq && f.more && f.history && f.history.length) history({ after: state.lastSeq });
        say('');
        showStatus();
        updateBadge();
        state.queue.slice().forEach(function (m) { send(m); });
        break;
      case 'availability':
        state.avail = f;
        showStatus();
        break;
      case 'message':
        render(f);
        break;
      case 'history':
        (f.messages || []).forEach(render);
        if (state.histDir === 'before') earlier.hidden = !f.more;
        else if (f.more && f.messages && f.messages.length) history({ after: state.lastSeq });
        break;
      case 'typing':
        if (f.from === 'agent') {
          typing.textContent = T.typing;
          clearTimeout(state.typingTimer);
          state.typingTimer = setTimeout(function () { typing.textContent = ''; }, 6000);
        }
        break;
      case 'read':
        if (f.from === 'visitor') { state.readUpTo = Math.max(state.readUpTo, f.up_to); updateBadge(); }
        else Object.keys(state.seen).forEach(function (s) {
          var el = state.seen[s];
          if (+s <= f.up_to && el.classList.contains('me') && !el.getAttribute('data-read')) {
            el.setAttribute('data-read', '1');
            el.setAttribute('title', T.read);
          }
        });
        break;
      case 'error':
        onError(f);
        break;
    }
  }
  function onError(f) {
    var p = f.ref && state.pending[f.ref];
    switch (f.code) {
      case 'token_invalid':
      case 'token_expired':
        token = null;
        store(tokenKey, null);
        reset();
        break;
      case 'identity_invalid':
      case 'identity_expired':
        if (window.console) console.warn('omnigate: identity refused (' + f.code + '); chatting anonymously');
        identity = null;
        token = store(tokenKey);
        reset();
        break;
      case 'unknown_site':
      case 'origin_forbidden':
        state.fatal = true;
        say(T.unavailable);
        break;
      case 'rate_limited':
        if (p) {
          say(T.tooFast);
          setTimeout(function () { if (state.pending[f.ref]) send(p.frame); }, f.retry_after_ms || 2000);
        }
        break;
      case 'unavailable':
        if (p) setTimeout(function () { if (state.pending[f.ref]) send(p.frame); }, f.retry_after_ms || 2000);
        break;
      default:
        if (p) {
          p.el.classList.remove('pending');
          p.el.classList.add('failed');
          p.el.msg.appendChild(h('span', { 'class': 'meta', text: T.failed }));
          delete state.pending[f.ref];
          state.queue = state.queue.filter(function (m) { return m.client_id !== f.ref; });
          say(f.code === 'too_large' ? T.tooLarge : T.refused);
        }
    }
  }

  // Composing.
  function clientID() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
  }
  function submit(text, attachments, extra) {
    var f = { type: 'message', client_id: clientID(), text: text };
    if (attachments) f.attachments = attachments;
    if (profile) {
      if (profile.name) f.name = profile.name;
      if (profile.email) f.email = profile.email;
      if (profile.fields) f.fields = profile.fields;
    }
    // After an offline message, the visitor's next ones go the same way
    // until someone can answer.
    if (!extra && state.offline && !online()) extra = state.offline;
    for (var k in extra || {}) f[k] = extra[k];
    var el = bubble({ from: 'visitor', text: text || (attachments ? T.file : '') }, 'pending');
    el.setAttribute('aria-label', T.sending);
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
    state.pending[f.client_id] = { frame: f, el: el };
    state.queue.push(f);
    showForms();
    if (!state.ws && !state.es && !state.timer) connect();
    send(f);
    return true;
  }
  function trim(s) { return (s || '').replace(/^\s+|\s+$/g, ''); }
  function validEmail(inp) { return !!trim(inp.value) && inp.checkValidity(); }
  pre.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (!trim(preName.input.value) || preFields.some(function (f) { return f.input.required && !trim(f.input.value); })) { say(T.fieldNeeded); return; }
    if (!validEmail(preEmail.input)) { say(T.emailNeeded); preEmail.input.focus(); return; }
    profile = { name: trim(preName.input.value), email: trim(preEmail.input.value), fields: {} };
    preFields.forEach(function (f) { if (trim(f.input.value)) profile.fields[f.name] = trim(f.input.value); });
    if (!identity) store(tokenKey + ':profile', JSON.stringify(profile));
    say('');
    showForms();
    input.focus();
  });
  off.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var text = trim(offText.input.value);
    if (!validEmail(offEmail.input)) { say(T.emailNeeded); offEmail.input.focus(); return; }
    if (!text) { say(T.fieldNeeded); offText.input.focus(); return; }
    var extra = { offline: true, email: trim(offEmail.input.value) };
    if (trim(offName.input.value)) extra.name = trim(offName.input.value);
    state.left = true;
    state.offline = extra;
    submit(text, null, extra);
    offText.input.value = '';
    say(state.cfg.offline_form === 'chat' ? T.thanksChat : T.thanks, true);
  });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var text = trim(input.value);
    if (!text) return;
    if (submit(text)) { input.value = ''; input.style.height = ''; }
  });
  input.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit', { cancelable: true }));
    }
  });
  input.addEventListener('input', function () {
    input.style.height = 'auto';
    input.style.height = Math.min(120, input.scrollHeight) + 'px';
    var now = Date.now();
    if (now - state.lastTyping > 3000) { state.lastTyping = now; send({ type: 'typing' }); }
  });
  attachBtn.addEventListener('click', function () { file.click(); });
  file.addEventListener('change', function () {
    var f = file.files && file.files[0];
    file.value = '';
    if (!f) return;
    if (f.size > state.limits.max_upload_bytes) { say(T.tooLarge); return; }
    if (!state.token) { say(T.uploadFailed); return; }
    var body = new FormData();
    body.append('file', f, f.name);
    request('POST', '/uploads', body).then(function (u) {
      submit(trim(input.value), [{ id: u.id }]);
      input.value = '';
    }, function (e) {
      say(e && e.code === 'too_large' ? T.tooLarge : e && e.code === 'unsupported_type' ? T.badType : T.uploadFailed);
    });
  });
  function history(q) {
    state.histDir = q.after ? 'after' : 'before';
    q.type = 'history';
    q.limit = q.after ? 200 : 50;
    send(q);
  }
  earlier.addEventListener('click', function () {
    if (state.oldest > 1) history({ before: state.oldest });
  });

  // Opening and closing; Escape closes and gives focus back to the launcher.
  function setOpen(open) {
    state.open = open;
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', String(open));
    if (open) {
      if (!state.ws && !state.es && !state.timer) connect();
      focusFirst();
      log.scrollTop = log.scrollHeight;
      markRead();
    } else launcher.focus();
    updateBadge();
  }
  function focusFirst() {
    if (!off.hidden) (offEmail.input.value ? offText.input : offEmail.input).focus();
    else if (!pre.hidden) preName.input.focus();
    else input.focus();
  }
  launcher.addEventListener('click', function () { setOpen(!state.open); });
  closeBtn.addEventListener('click', function () { setOpen(false); });
  panel.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape' || ev.key === 'Esc') { ev.stopPropagation(); setOpen(false); }
  });
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState !== 'visible') return;
    markRead();
    if (!state.connected && state.timer) { clearTimeout(state.timer); state.timer = null; connect(); }
  });

  function mount() {
    applyConfig(null);
    document.body.appendChild(host);
    loadConfig();
    // A returning visitor connects at once, for replies that came meanwhile
    // (the unread badge); a new one when the chat is first opened.
    if (token || identity) connect();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  // A small API for the page.
  window.Omnigate = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    // identify switches to a signed-in user: an identity signed by the site's
    // backend (docs/web-protocol.md); logout goes back to anonymous.
    identify: function (id) { identity = id; restart(); },
    logout: function () { identity = null; token = store(tokenKey); restart(); }
  };
  // reset forgets the conversation shown, for another visitor.
  function reset() {
    state.token = null;
    state.lastSeq = 0;
    state.readUpTo = 0;
    state.agentSeqs = [];
    state.seen = {};
    state.oldest = 0;
    Array.prototype.slice.call(log.querySelectorAll('.row')).forEach(function (el) { el.parentNode.removeChild(el); });
    updateBadge();
  }
  function restart() {
    reset();
    var ws = state.ws, es = state.es;
    state.ws = state.es = null;
    if (ws) ws.close();
    if (es) es.close();
    state.connected = false;
    connect();
  }
})();
