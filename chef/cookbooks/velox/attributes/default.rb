# Attributes of the velox cookbook. Every key under ['app'] and ['proxy']
# is a key of the Velox configuration file of the same name
# (configs/velox.yaml and configs/proxy.compose.yaml in the repository);
# velox rejects unknown keys at start.

# --- installation (recipe velox::install) ---
# Where the velox binary comes from: an https:// URL, or file:///path for a
# binary put on the node by other means. Required.
default['velox']['install']['url'] = nil
# Its SHA-256. Strongly recommended: without it a changed file at the URL
# is installed silently.
default['velox']['install']['checksum'] = nil
default['velox']['install']['path'] = '/usr/local/bin/velox'

default['velox']['user'] = 'velox'
default['velox']['group'] = 'velox'
default['velox']['config_dir'] = '/etc/velox'

# --- secrets ---
# Read from this data bag item (encrypt it: knife data bag create velox
# secrets --secret-file ...; Chef decrypts it with the node's secret).
# Keys: master_keys, session_key, swift_key, db_dsn, ldap_bind_password,
# admin_password; see README.md. Set data_bag to nil to take them from
# ['velox']['secrets']['values'] instead (development only: node
# attributes are stored in the clear).
default['velox']['secrets']['data_bag'] = 'velox'
default['velox']['secrets']['data_bag_item'] = 'secrets'
default['velox']['secrets']['values'] = {}
# The proxy's certificates, when ['proxy']['tls']['source'] is data_bag.
default['velox']['secrets']['tls_data_bag_item'] = 'tls'

# --- app node: velox serve (recipe velox::app) ---
app = default['velox']['app']
app['listen'] = '0.0.0.0:8080'
app['data'] = '/var/lib/velox'
app['base_url'] = ''
app['log']['level'] = 'info'
app['log']['format'] = 'json'
# Several app nodes share one PostgreSQL; the DSN is the secret db_dsn.
app['db']['driver'] = 'postgres'
app['storage']['backend'] = 'swift'
swift = app['storage']['swift']
# tempauth on a Swift proxy (recipe velox_swift::proxy), or Keystone v3.
swift['auth_url'] = 'http://127.0.0.1:8080/auth/v1.0'
swift['user'] = 'velox:velox'
swift['auth_version'] = 0
swift['domain'] = ''
swift['project'] = ''
swift['project_domain'] = ''
swift['region'] = ''
swift['storage_url'] = ''
swift['ca_file'] = ''
swift['container_prefix'] = 'velox'
swift['shards'] = 256
# nil leaves Velox's default (configs/velox.yaml).
swift['segment_size'] = nil
swift['manifest_segments'] = nil
swift['large_object_threshold'] = nil
swift['concurrency'] = nil
swift['timeout'] = nil
swift['retries'] = nil
app['http']['read_header_timeout'] = '10s'
app['http']['idle_timeout'] = '2m'
app['http']['shutdown_timeout'] = '60s'
app['http']['max_upload_bytes'] = 0
# The velox proxy node(s): their X-Forwarded-* headers are believed.
app['http']['trusted_proxies'] = []
app['session']['secure'] = 'auto'
app['session']['idle_timeout'] = '24h'
app['session']['max_age'] = '720h'
app['gc']['interval'] = '1h'
app['gc']['grace'] = '24h'
app['auth']['providers'] = ['local']
app['auth']['rate_limit']['account_failures'] = 5
app['auth']['rate_limit']['ip_failures'] = 20
app['auth']['rate_limit']['max_backoff'] = '15m'
# Used when providers lists ldap; with a preset (ad or openldap) urls,
# bind_dn and base_dn are enough; "" leaves the preset's choice.
ldap = app['auth']['ldap']
ldap['preset'] = ''
ldap['urls'] = []
ldap['start_tls'] = false
ldap['allow_plaintext'] = false
ldap['ca_file'] = ''
ldap['server_name'] = ''
ldap['bind_dn'] = ''
ldap['base_dn'] = ''
ldap['user_base'] = ''
ldap['user_filter'] = ''
ldap['login_attributes'] = []
ldap['username_attribute'] = ''
ldap['display_name_attribute'] = ''
ldap['email_attribute'] = ''
ldap['group_base'] = ''
ldap['group_filter'] = ''
ldap['group_name_attribute'] = ''
ldap['group_member_attribute'] = ''
ldap['group_membership'] = ''
ldap['timeout'] = '0s'
ldap['sync_interval'] = '15m'
app['quota']['personal_default'] = 0
app['uploads']['session_ttl'] = '24h'
app['encryption']['active_key_id'] = ''

# --- proxy node: velox proxy (recipe velox::proxy) ---
proxy = default['velox']['proxy']
proxy['listen'] = ':443'
proxy['http_listen'] = ':80'
proxy['redirect_port'] = 0
proxy['admin_listen'] = '127.0.0.1:9100'
proxy['health_path'] = '/.velox-proxy/healthz'
proxy['shutdown_timeout'] = '5m'
# Certificates: dev-cert (a self-signed development CA and certificate
# for tls.dev_cert_hosts, made once with "velox proxy dev-cert"),
# data_bag (PEM from the item ['velox']['secrets']['tls_data_bag_item']:
# {"certificates": [{"name": ..., "cert": ..., "key": ..., "hosts": [...]}]}),
# or files (tls.certificates lists cert/key paths put there by something
# else, e.g. an ACME client).
proxy['tls']['source'] = 'dev-cert'
proxy['tls']['dir'] = '/etc/velox/tls'
proxy['tls']['dev_cert_hosts'] = ['localhost', '127.0.0.1']
proxy['tls']['certificates'] = []
proxy['tls']['reload_interval'] = '1m'
proxy['tls']['ocsp_stapling'] = true
proxy['hsts']['max_age'] = '8760h'
proxy['hsts']['include_subdomains'] = false
proxy['hsts']['preload'] = false
proxy['trusted_proxies'] = []
proxy['limits']['max_header_bytes'] = 65536
proxy['limits']['read_header_timeout'] = '10s'
proxy['limits']['idle_timeout'] = '120s'
proxy['limits']['body_min_rate'] = 1024
proxy['limits']['body_grace'] = '30s'
proxy['limits']['max_conns_per_ip'] = 256
proxy['limits']['rate_per_ip'] = 100
proxy['limits']['burst_per_ip'] = 200
proxy['log']['format'] = 'json'
proxy['log']['access'] = true
# Pools, as in the config file (targets, balance, retries, health_check,
# passive, transport, headers). A pool without targets is left out,
# together with the routes to it.
proxy['upstreams']['app']['targets'] = ['http://127.0.0.1:8080']
proxy['upstreams']['app']['balance'] = 'least_outstanding'
proxy['upstreams']['app']['health_check'] = { 'path' => '/readyz', 'interval' => '2s', 'timeout' => '1s' }
proxy['upstreams']['swift']['targets'] = []
proxy['upstreams']['swift']['health_check'] = { 'path' => '/healthcheck', 'interval' => '2s', 'timeout' => '1s' }
proxy['routes'] = [
  { 'path' => '/', 'upstream' => 'app' },
  { 'path' => '/api/', 'upstream' => 'app', 'header_timeout' => '60s' },
  { 'path' => '/remote.php/', 'upstream' => 'app' },
  { 'path' => '/v1/', 'upstream' => 'swift', 'host_header' => 'upstream' },
]
