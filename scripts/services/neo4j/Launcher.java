import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Config;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Session;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Runs a real Neo4j (Community, in-process via neo4j-harness) for the astrocyte-neo4j tests.
 *
 * <p>Usage: {@code java -cp <lib>/*:<classes> Launcher <work-dir> <bolt-port> <password>}
 * runs the server until SIGTERM; {@code Launcher probe <bolt-port> <password>} exits 0 once a
 * Cypher query over Bolt, as user neo4j, succeeds (the start script's readiness check).
 *
 * <p>Bolt listens on 127.0.0.1 only, without TLS; the HTTP server is disabled. Authentication
 * is on, so the adapter's bad-credentials handling is tested against the real server. The
 * harness keeps the store in a fresh random directory under work-dir and deletes it on exit,
 * so every start is an empty database.
 */
public final class Launcher {
    private Launcher() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Launcher <work-dir>|probe <bolt-port> <password>");
            System.exit(2);
        }
        if (args[0].equals("probe")) {
            System.exit(probe(Integer.parseInt(args[1]), args[2]) ? 0 : 1);
        }
        Path workDir = Path.of(args[0]);
        int port = Integer.parseInt(args[1]);
        String password = args[2];
        Files.createDirectories(workDir);

        Neo4j neo4j = Neo4jBuilders.newInProcessBuilder(workDir)
                .withDisabledServer()
                .withConfig(BoltConnector.enabled, true)
                .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .withConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", port))
                .withConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .withConfig(GraphDatabaseSettings.auth_enabled, true)
                // Tests try wrong passwords on purpose; a lock-out would break the next test.
                .withConfig(GraphDatabaseSettings.auth_max_failed_attempts, 0)
                .withConfig(GraphDatabaseSettings.pagecache_memory, 64L * 1024 * 1024)
                .build();

        // A new system database has user neo4j with password "neo4j" that must be changed
        // before use; the embedded API on the system database may set it directly.
        neo4j.databaseManagementService()
                .database("system")
                .executeTransactionally(
                        "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                        Map.of("password", password));

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            neo4j.close();
            stopped.countDown();
        }, "neo4j-shutdown"));
        System.out.println("neo4j-launcher: bolt ready on " + neo4j.boltURI());
        System.out.flush();
        stopped.await();
    }

    /** True when {@code RETURN 1} answers over Bolt with the test credentials. */
    private static boolean probe(int port, String password) {
        Config config = Config.builder()
                .withoutEncryption()
                .withConnectionTimeout(5, java.util.concurrent.TimeUnit.SECONDS)
                .build();
        try (Driver driver = GraphDatabase.driver(
                        "bolt://127.0.0.1:" + port, AuthTokens.basic("neo4j", password), config);
                Session session = driver.session()) {
            return session.run("RETURN 1 AS ok").single().get("ok").asInt() == 1;
        } catch (RuntimeException e) {
            System.err.println("neo4j-launcher probe: " + e.getMessage());
            return false;
        }
    }
}
